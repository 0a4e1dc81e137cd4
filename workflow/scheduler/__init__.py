"""Sweeps and the outbox: set-based SQL over the store (a batch adapter)."""
