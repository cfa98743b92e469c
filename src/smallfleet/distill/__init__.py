"""Distillation: traces -> dataset -> specialist -> evaluation gate -> promotion."""
