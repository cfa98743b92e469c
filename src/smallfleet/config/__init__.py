"""Configuration: the fleet file (YAML -> typed objects) and the SMALLFLEET_* environment."""
