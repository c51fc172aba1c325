"""OpenAPI 3.1 description of the ingest API, served at /api/v1/openapi.json."""
from __future__ import annotations

from typing import Any

from motcua.config import Config
from motcua.statuses import STATUSES


def openapi_document(cfg: Config) -> dict[str, Any]:
    status_codes = sorted(set(cfg.statuses.source_map) | set(STATUSES))
    error = {"$ref": "#/components/schemas/Error"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Motcua kiosk ingest API",
            "version": "1",
            "description": (
                "Pushes dossier status changes from the provincial administrative-procedure system "
                "into the commune kiosk. Batches are all-or-nothing; repeated and out-of-order events "
                "never move a dossier backwards (source_version, else source_updated_at, decides)."
            ),
        },
        "paths": {
            "/api/v1/dossiers": {
                "post": {
                    "summary": "Create or update a batch of dossiers",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"oneOf": [
                            {"type": "object", "required": ["dossiers"], "properties": {
                                "dossiers": {"type": "array", "maxItems": cfg.ingest.max_batch,
                                             "items": {"$ref": "#/components/schemas/Dossier"}}}},
                            {"type": "array", "maxItems": cfg.ingest.max_batch,
                             "items": {"$ref": "#/components/schemas/Dossier"}},
                        ]}}},
                    },
                    "responses": {
                        "200": {"description": "Applied", "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Report"}}}},
                        "400": {"description": "Malformed JSON or wrong shape",
                                "content": {"application/json": {"schema": error}}},
                        "401": {"description": "Missing or wrong bearer token",
                                "content": {"application/json": {"schema": error}}},
                        "403": {"description": "Ingest disabled (no token configured)",
                                "content": {"application/json": {"schema": error}}},
                        "413": {"description": "Body or batch too large",
                                "content": {"application/json": {"schema": error}}},
                        "415": {"description": "Not application/json",
                                "content": {"application/json": {"schema": error}}},
                        "422": {"description": "Invalid dossiers; nothing written",
                                "content": {"application/json": {"schema": error}}},
                    },
                }
            }
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Dossier": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["code", "status"],
                    "properties": {
                        "code": {"type": "string", "maxLength": 100, "pattern": r"^\S+$",
                                 "examples": ["000.00.21.H42-251125-0001"]},
                        "status": {"type": "string", "enum": status_codes,
                                   "description": "Source status code (mapped by [statuses] source_map)"
                                                  " or a kiosk status"},
                        "secret": {"type": ["string", "null"], "maxLength": 64,
                                   "description": "Lookup secret (mã tra cứu)"},
                        "procedure": {"type": ["string", "null"], "maxLength": 500},
                        "field": {"type": ["string", "null"], "maxLength": 200, "description": "Lĩnh vực"},
                        "applicant_name": {"type": ["string", "null"], "maxLength": 200},
                        "phone": {"type": ["string", "null"], "maxLength": 32},
                        "appointment_date": {"type": ["string", "null"], "format": "date"},
                        "received_at": {"type": ["string", "null"], "format": "date-time"},
                        "source_version": {"type": ["integer", "null"], "minimum": 0},
                        "source_updated_at": {"type": ["string", "null"], "format": "date-time",
                                              "description": "Without an offset: local time of the site"},
                    },
                },
                "Report": {
                    "type": "object",
                    "properties": {k: {"type": "integer"} for k in ("created", "updated", "unchanged", "stale")}
                    | {"errors": {"type": "array"}},
                },
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"}, "errors": {"type": "array"}}},
            },
        },
    }
