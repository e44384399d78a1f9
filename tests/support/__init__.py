"""Helpers shared by the tests that drive real processes."""
