"""Traces: one durable record per request (schema, SQLite store, background writer)."""
