"""Routing: walk a contract's ladder, escalate only what the small model would get wrong, account for it."""
