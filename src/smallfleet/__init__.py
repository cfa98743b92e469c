"""smallfleet: answer each agent step with the smallest model that satisfies its contract."""

__version__ = "0.1.0"
