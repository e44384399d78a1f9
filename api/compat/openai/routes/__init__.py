"""The OpenAI-compatible resources, one a file."""
