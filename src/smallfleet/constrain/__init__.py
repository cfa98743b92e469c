"""Constrained outputs: constraint types, up-front refusal of what cannot be enforced, token masks, checks."""
