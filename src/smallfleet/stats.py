"""Small statistics helpers shared by benchmarks and reports."""

from __future__ import annotations


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile `p` (0..100) of `values` (non-empty)."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
