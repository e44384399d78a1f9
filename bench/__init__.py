"""Benchmarks: scripts that print figures, never assertions."""
