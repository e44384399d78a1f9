"""Code both the API and the worker need. Imports neither api/ nor worker/."""
