"""Queries and state transitions. They flush; the caller owns the transaction and commits."""
