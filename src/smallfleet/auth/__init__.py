"""Who is calling: API keys (hashed at rest) and the tenants they belong to."""
