"""GET /docs/: Swagger UI on /openapi.json, every asset served by the API itself (works offline)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient


def test_docs_redirects_to_the_page(client: FlaskClient) -> None:
    """/docs redirects to /docs/, which is an HTML page."""
    response = client.get("/docs")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/docs/")
    page = client.get("/docs/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"


def test_docs_page_loads_only_local_assets(client: FlaskClient) -> None:
    """Each script and stylesheet the page names is served here with its type; none is remote."""
    html = client.get("/docs/").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
    }
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        expected = "text/javascript" if asset.endswith(".js") else "text/css"
        assert response.mimetype == expected, asset
        assert len(response.get_data()) > 100, asset


def test_docs_page_reads_the_served_document(client: FlaskClient) -> None:
    """The page points Swagger UI at /openapi.json, which is served."""
    html = client.get("/docs/").get_data(as_text=True)
    assert '"url": "/openapi.json"' in html
    assert client.get("/openapi.json").status_code == 200
