"""Use cases over a unit of work."""
