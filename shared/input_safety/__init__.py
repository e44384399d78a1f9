"""Input safety: PII scrubbing and prompt-injection screening, for the API and the worker."""
