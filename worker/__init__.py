"""The Celery side: claims jobs, calls models through the official SDKs, records the outcome."""
