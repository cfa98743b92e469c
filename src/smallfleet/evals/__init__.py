"""Benchmarks and simulations: they print figures; tests assert behaviour elsewhere."""
