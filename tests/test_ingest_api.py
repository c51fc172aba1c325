"""POST /api/v1/dossiers: bearer token, clear 4xx for every kind of bad request, nothing half-written."""
from __future__ import annotations

import json

import sqlalchemy as sa

from kiosk.store.schema import dossier_history, dossiers, ingest_runs
from sms_gateway.schema import notices
from tests.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def post(client, body, headers=AUTH, content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/v1/dossiers", data=data, headers=headers, content_type=content_type)


def count(engine, table):
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


def d(code="000.00.21.H42-251125-0001", **kw):
    return {"code": code, "status": "processing", "procedure": "Đăng ký khai sinh", "phone": "0987654321",
            "source_version": 1, **kw}


def test_batch_is_applied_and_counted(client, engine):
    r = post(client, {"dossiers": [d(), d("X-2", status="releasing")]})
    assert r.status_code == 200, r.json
    assert r.json == {"created": 2, "updated": 0, "unchanged": 0, "stale": 0, "errors": []}
    r = post(client, [d(), d("X-2", status="releasing")])  # a bare array works too; repeat = no-op
    assert r.json["unchanged"] == 2
    assert count(engine, dossiers) == 2
    assert count(engine, notices) == 1  # X-2 is ready: one notice, not two
    assert count(engine, ingest_runs) == 2


def test_wrong_or_missing_token_is_401_and_writes_nothing(client, engine):
    r = post(client, [d()], headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "wrong bearer token" in r.json["error"]
    r = post(client, [d()], headers={})
    assert r.status_code == 401 and "missing bearer token" in r.json["error"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert count(engine, dossiers) == 0


def test_api_disabled_without_configured_token(make_config, engine):
    from kiosk.app import create_app

    app = create_app(make_config(ingest={"api_token": ""}), engine)
    r = app.test_client().post("/api/v1/dossiers", json=[d()], headers={"Authorization": "Bearer "})
    assert r.status_code == 403 and "api_token" in r.json["error"]


def test_malformed_json_names_the_position(client, engine):
    r = post(client, '{"dossiers": [ {"code": "A", }')
    assert r.status_code == 400
    assert r.json["error"].startswith("malformed JSON") and "line 1" in r.json["error"]
    assert post(client, b"\xff\xfe{}").status_code == 400
    assert post(client, {"dossiers": "nope"}).status_code == 400
    assert count(engine, dossiers) == 0


def test_wrong_content_type_is_415(client):
    r = post(client, json.dumps([d()]), content_type="text/plain")
    assert r.status_code == 415


def test_oversized_body_is_413(make_config, engine):
    from kiosk.app import create_app

    app = create_app(make_config(ingest={"api_token": TOKEN, "max_body_bytes": 2048}), engine)
    big = [d(f"C-{i}", procedure="x" * 400) for i in range(20)]
    r = post(app.test_client(), big)
    assert r.status_code == 413 and "max_body_bytes" in r.json["error"]
    assert count(engine, dossiers) == 0


def test_unknown_status_rejects_the_whole_batch(client, engine):
    r = post(client, [d("OK-1"), d("BAD-2", status="teleported"), d("OK-3")])
    assert r.status_code == 422
    assert "#1 status: unknown status 'teleported'" in r.json["error"]
    assert r.json["errors"][0] == {"index": 1, "code": "BAD-2", "field": "status",
                                   "error": "unknown status 'teleported'"}
    assert count(engine, dossiers) == 0 and count(engine, dossier_history) == 0


def test_each_kind_of_bad_field_is_named(client):
    cases = {
        "code": d(code="has space"),
        "appointment_date": d(appointment_date="next tuesday"),
        "source_version": d(source_version=-3),
        "applicant_name": d(applicant_name="A" * 10_000),
        "phone": d(phone="0912\x00345678"),
        "shoe_size": d(shoe_size=42),
    }
    for field, record in cases.items():
        r = post(client, [record])
        assert r.status_code == 422, field
        assert r.json["errors"][0]["field"] == field


def test_out_of_order_batch_keeps_newest(client, engine):
    post(client, [d(status="releasing", source_version=7)])
    r = post(client, [d(status="processing", source_version=6), d(status="receiving", source_version=2)])
    assert r.json["stale"] == 2
    with engine.connect() as conn:
        assert conn.scalar(sa.select(dossiers.c.status)) == "result_ready"


def test_hostile_strings_are_stored_verbatim_not_interpreted(client, engine):
    evil = '<script>alert(1)</script>"; DROP TABLE dossiers; --'
    r = post(client, [d(applicant_name=evil, procedure="javascript:alert(1)")])
    assert r.status_code == 200
    with engine.connect() as conn:
        assert conn.scalar(sa.select(dossiers.c.applicant_name)) == evil


def test_openapi_document_describes_the_endpoint(client):
    doc = client.get("/api/v1/openapi.json").json
    post_op = doc["paths"]["/api/v1/dossiers"]["post"]
    assert set(post_op["responses"]) >= {"200", "400", "401", "413", "415", "422"}
    schema = doc["components"]["schemas"]["Dossier"]
    assert schema["required"] == ["code", "status"]
    assert "releasing" in schema["properties"]["status"]["enum"]
