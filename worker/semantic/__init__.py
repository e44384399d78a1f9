"""The semantic cache's worker side: the embedding model, the sign codes and the scopes."""
