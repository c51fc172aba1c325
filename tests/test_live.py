"""The app under real gunicorn answers, and serves its OpenAPI document to a real browser."""
import json


def test_openapi_served_by_real_gunicorn_to_chromium(live_server, page):
    base = live_server()
    resp = page.goto(f"{base}/api/v1/openapi.json")
    assert resp.status == 200
    doc = json.loads(page.inner_text("body"))
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/dossiers" in doc["paths"]
