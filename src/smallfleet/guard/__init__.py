"""The sovereignty guard: what is sensitive, and what may leave."""
