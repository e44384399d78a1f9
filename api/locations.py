"""The Location header of an answer that names a resource: always absolute (RFC 9110 allows a
relative one, but a client behind a proxy or holding only the header resolves it wrongly)."""

from __future__ import annotations

from flask import Response, url_for


def located(response: Response, endpoint: str, **values: str) -> Response:
    """`response`, with Location the absolute URL of `endpoint` at `values`."""
    response.headers["Location"] = url_for(endpoint, _external=True, **values)
    return response
