"""Celery tasks, one task family a file."""
