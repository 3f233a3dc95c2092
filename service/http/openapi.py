"""The OpenAPI 3.1 document (`/openapi.json`) and Swagger UI (`/docs`), both served offline.

Schemas come from the pydantic models themselves (records, verdict, batch, errors), so the document
cannot drift from what the API validates and returns; OpenAPI 3.1 speaks the same JSON Schema
dialect pydantic writes. Swagger UI's files come from the installed flask-swagger-ui package, so
/docs needs no CDN.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import flask_swagger_ui
from flask import Blueprint, Flask, Response, current_app, jsonify, send_from_directory, url_for
from pydantic import TypeAdapter

from service.engine.schemas import Record, Verdict
from service.http import api
from service.http.errors import ErrorBody

SWAGGER_UI_DIR = Path(flask_swagger_ui.__file__).parent / "dist"
REF_TEMPLATE = "#/components/schemas/{model}"
EXTENSION = "dunscan_openapi"

blueprint = Blueprint("docs", __name__)

# (component name, JSON Schema mode, type): request bodies validate, responses serialize.
_SCHEMAS: list[tuple[str, Any, Any]] = [
    ("Record", "validation", Record),
    ("BatchRequest", "validation", api.BatchRequest),
    ("Verdict", "serialization", Verdict),
    ("BatchResponse", "serialization", api.BatchResponse),
    ("NumberResponse", "serialization", api.NumberResponse),
    ("BrandsResponse", "serialization", api.BrandsResponse),
    ("HealthResponse", "serialization", api.HealthResponse),
    ("ReadyResponse", "serialization", api.ReadyResponse),
    ("Error", "serialization", ErrorBody),
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=name)}


# Some text, not only whitespace (JSON Schema patterns search, they are not anchored).
NOT_BLANK = api.NOT_BLANK
RFC3339_EXAMPLE = "2026-11-20T09:30:00+08:00"


def _string_branch(prop: dict[str, Any]) -> dict[str, Any]:
    """The `type: string` schema of a property, itself or inside its anyOf (string | null)."""
    if prop.get("type") == "string":
        return prop
    return next(branch for branch in prop["anyOf"] if branch.get("type") == "string")


def _limit_records(schemas: dict[str, Any], config: Any) -> None:
    """The limits the API applies beyond the types (service.http.api._record), written into the
    record schemas so the document promises what the service does: SMS text not blank and at
    most MAX_TEXT_CHARS, sender at most MAX_SENDER_CHARS (a call's not blank either)."""
    for name, text_required in (("SmsRecord", True), ("CallRecord", False)):
        properties = schemas[name]["properties"]
        text = _string_branch(properties["text"])
        text["maxLength"] = int(config["MAX_TEXT_CHARS"])
        sender = _string_branch(properties["sender"])
        sender["maxLength"] = api.MAX_SENDER_CHARS
        if text_required:
            text.update(minLength=1, pattern=NOT_BLANK)
        else:
            sender.update(minLength=1, pattern=NOT_BLANK)
        _string_branch(properties["received_at"])["examples"] = [RFC3339_EXAMPLE]


def _components(config: Any) -> dict[str, Any]:
    adapters = [(name, mode, TypeAdapter(kind)) for name, mode, kind in _SCHEMAS]
    top, defs = TypeAdapter.json_schemas(adapters, ref_template=REF_TEMPLATE)
    schemas = dict(defs.get("$defs", {}))
    for (name, _mode), schema in top.items():
        if schema != _ref(name):  # a union (Record) is inlined, not a $ref to itself
            schemas[name] = schema
    _limit_records(schemas, config)
    return schemas


def _json(schema_name: str, description: str) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref(schema_name)}}
    return {"description": description, "content": content}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "Malformed JSON or body",
        401: "Missing or wrong API key (only when keys are configured)",
        413: "Body, text or batch over its limit",
        415: "Unsupported Content-Type",
        422: "Missing or mistyped field; `field` names it",
        429: "Rate limited; see Retry-After",
        503: "Not ready, or busy (a large batch is being checked); see Retry-After",
    }
    return {str(status): _json("Error", meaning[status]) for status in statuses}


# SmsForwarder's fields (README "SmsForwarder"; service/phones/smsforwarder.py reads them). Every
# one is optional in the schema: which arrive depends on the app's template and request method.
_FORWARDER_FIELDS: dict[str, str] = {
    "from": "The sender number ([from]).",
    "org_content": "The SMS body, or a call record's localized text ([org_content]).",
    "content": "The app's default multi-line block (sender, body, SIM, time, device).",
    "timestamp": "Milliseconds since the epoch ([timestamp]); signed when a secret is set.",
    "sign": "base64(HMAC-SHA256(secret, timestamp + newline + secret)), URL-encoded or not.",
    "receive_time": "When the phone received it ([receive_time]).",
    "device_mark": "The phone's name ([device_mark]).",
    "card_slot": "SIM slot ([card_slot]).",
}
HOOK_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["accepted", "duplicate"],
    "properties": {
        "accepted": {"type": "boolean"},
        "duplicate": {
            "type": "boolean",
            "description": "True for a record already accepted; nothing else is sent then.",
        },
        "kind": {"type": "string", "enum": ["sms", "call"]},
        "risk": {"type": "number", "minimum": 0, "maximum": 1},
        "level": {"type": "string", "enum": ["low", "medium", "high"]},
        "category": {"type": "string", "enum": ["scam", "abusive", "legit", "other"]},
        "notified": {"type": "boolean", "description": "A push to the owner was queued."},
        "summary": {"type": "string", "description": "Short Chinese summary of the verdict."},
    },
}


def _smsforwarder_hook() -> dict[str, Any]:
    """The SmsForwarder webhook: every method and body shape the Android app sends."""
    fields = {
        "type": "object",
        "properties": {
            name: {"type": "string", "description": text}
            for name, text in _FORWARDER_FIELDS.items()
        },
    }
    body = {
        "required": False,
        "content": {
            "application/json": {"schema": fields},
            "application/x-www-form-urlencoded": {"schema": fields},
        },
    }
    query = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in _FORWARDER_FIELDS
    ]
    token = {
        "name": "token",
        "in": "path",
        "required": True,
        "description": "The hook's secret URL token, printed once by `dunscan hooks add`.",
        "schema": {"type": "string"},
    }
    responses = {
        "200": {
            "description": "Accepted and checked (or a duplicate, which the phone need not resend)",
            "content": {"application/json": {"schema": _ref("HookResponse")}},
        },
        "401": _json("Error", "Missing, wrong or stale signature, or a signature reused"),
        "404": _json("Error", "No hook with this token"),
        "422": _json("Error", "No message could be read from the request"),
    }

    def operation(method: str, with_body: bool) -> dict[str, Any]:
        described = {
            "summary": "SmsForwarder webhook: check a forwarded SMS or call record",
            "description": (
                'For the SmsForwarder Android app (README "SmsForwarder"). POST sends the '
                "fields as JSON (template) or a form (the app's default); PUT and PATCH send "
                "them in the query string; GET appends them to the URL. A high-risk or abusive "
                "verdict queues a push to the hook's notify URL."
            ),
            "operationId": f"smsforwarder{method.capitalize()}",
            "tags": ["phones"],
            "parameters": [token, *query],
            "responses": responses,
        }
        if with_body:
            described["requestBody"] = body
        return described

    return {
        "post": operation("post", True),
        "put": operation("put", True),
        "patch": operation("patch", True),
        "get": operation("get", False),
    }


def build_document(config: Any) -> dict[str, Any]:
    try:
        package_version = version("dunscan")
    except PackageNotFoundError:  # running from a source tree that was never installed
        package_version = "0.0.0"
    lang = {
        "name": "lang",
        "in": "query",
        "required": False,
        "description": (
            "Language of the advice (default: Accept-Language, else zh): zh or en, any case, "
            "optionally with a region (en-US)."
        ),
        "schema": {"type": "string", "pattern": api.LANG_PATTERN},
    }
    secured = [{}, {"ApiKey": []}]  # open unless the operator configured DUNSCAN_API_KEYS
    v1_errors = (401, 429)
    max_text = int(config["MAX_TEXT_CHARS"])
    text_schema = {"type": "string", "minLength": 1, "maxLength": max_text, "pattern": NOT_BLANK}
    form_schema = {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {**text_schema, "description": "The message as received."},
            "sender": {
                "type": "string",
                "maxLength": api.MAX_SENDER_CHARS,
                "description": "The number it came from, if known.",
            },
        },
    }
    paths: dict[str, Any] = {
        "/v1/check": {
            "post": {
                "summary": "One record in, one explained verdict out",
                "description": (
                    "Send a record as JSON, a form (`text`, `sender`) or the bare text as "
                    "text/plain. `Accept: text/plain` answers a short summary a phone can show. "
                    f"Text is limited to {config['MAX_TEXT_CHARS']} characters, the body to "
                    f"{config['MAX_CONTENT_LENGTH']} bytes."
                ),
                "operationId": "check",
                "security": secured,
                "parameters": [
                    lang,
                    {
                        "name": "sender",
                        "in": "query",
                        "required": False,
                        "description": "The sender, with a text/plain body (it carries only text).",
                        "schema": {"type": "string", "maxLength": api.MAX_SENDER_CHARS},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("Record")},
                        "application/x-www-form-urlencoded": {"schema": form_schema},
                        "text/plain": {"schema": text_schema},
                    },
                },
                "responses": {
                    "200": {
                        "description": "The verdict",
                        "content": {
                            "application/json": {"schema": _ref("Verdict")},
                            "text/plain": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 413, 415, 422, *v1_errors),
                },
            }
        },
        "/v1/check/batch": {
            "post": {
                "summary": "Several records, verdicts in order",
                "description": (
                    f"At most {config['MAX_BATCH']} records. A bad record gets its own error entry "
                    "(`index`, `error`) and does not fail the others."
                ),
                "operationId": "checkBatch",
                "security": secured,
                "parameters": [lang],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("BatchRequest")}},
                },
                "responses": {
                    "200": _json("BatchResponse", "One result per record, in input order"),
                    **_errors(400, 413, 415, 422, 503, *v1_errors),
                },
            }
        },
        "/v1/numbers/{number}": {
            "get": {
                "summary": "Classify one number: type, brand, official or not",
                "operationId": "number",
                "security": secured,
                "parameters": [
                    {
                        "name": "number",
                        "in": "path",
                        "required": True,
                        "description": "Any way a phone shows it, URL-encoded (+86%20171...).",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": api.MAX_SENDER_CHARS,
                            "pattern": NOT_BLANK,
                        },
                    }
                ],
                "responses": {
                    "200": _json("NumberResponse", "The classification"),
                    **_errors(422, *v1_errors),
                },
            }
        },
        "/v1/brands": {
            "get": {
                "summary": "Official contacts of every known brand",
                "operationId": "brands",
                "security": secured,
                "responses": {
                    "200": _json("BrandsResponse", "Brands with their official contacts"),
                    **_errors(*v1_errors),
                },
            }
        },
        "/hooks/sf/{token}": _smsforwarder_hook(),
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "healthz",
                "responses": {"200": _json("HealthResponse", "The process answers")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: rules, number lists and model loaded, with versions",
                "operationId": "readyz",
                "responses": {
                    "200": _json("ReadyResponse", "Ready"),
                    "503": _json("ReadyResponse", "Not ready"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (no personal data)",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/docs": {
            "get": {
                "summary": "Swagger UI for this document",
                "operationId": "docs",
                "responses": {
                    "200": {
                        "description": "HTML page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dunscan",
            "version": package_version,
            "summary": "Is this debt-collection SMS or call a scam?",
            "description": (
                'Every error is JSON: `{"error": {"code", "message", "field"}}`. '
                "Send `X-Request-ID` to correlate logs; it is echoed in the response. "
                "A query parameter an operation does not list is refused (422), so a typo "
                "(`?lnag=en`) is not silently ignored."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": {
            "schemas": {**_components(config), "HookResponse": HOOK_RESPONSE},
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": api.API_KEY_HEADER}
            },
        },
    }


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    document = current_app.extensions.get(EXTENSION)
    if document is None:
        document = current_app.extensions[EXTENSION] = build_document(current_app.config)
    return jsonify(document)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>dunscan API</title>
  <link rel="stylesheet" href="{css}">
  <style>{phone_css}</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{bundle}"></script>
  <script src="{init}"></script>
</body>
</html>
"""


# Swagger UI is laid out for a desktop; on a phone its paths, summaries and schema tables would
# run off the screen. These rules let them wrap (the policy allows inline styles for Swagger UI).
_PHONE_CSS = (
    "@media (max-width: 600px) {"
    " .swagger-ui .wrapper { padding: 0 8px; }"
    " .swagger-ui .info { margin: 16px 0; }"
    " .swagger-ui .info .title { font-size: 24px; }"
    " .swagger-ui .opblock .opblock-summary { flex-wrap: wrap; }"
    " .swagger-ui .opblock .opblock-summary-path { max-width: 100%; flex-shrink: 1;"
    " word-break: break-all; font-size: 15px; }"
    " .swagger-ui .opblock .opblock-summary-description { font-size: 14px; }"
    " .swagger-ui .opblock .opblock-summary-description { flex-basis: 100%; padding: 4px 0 0; }"
    " .swagger-ui .opblock-body, .swagger-ui .model-box, .swagger-ui .responses-inner,"
    " .swagger-ui table { overflow-x: auto; max-width: 100%; display: block; }"
    " .swagger-ui .scheme-container { padding: 12px 0; }"
    " .swagger-ui pre, .swagger-ui code { white-space: pre-wrap; word-break: break-word; }"
    "}"
)

# No inline script, so the page can run under a strict policy (Swagger UI styles inline).
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@blueprint.get("/docs")
@blueprint.get("/docs/")
def docs() -> Response:
    page = _PAGE.format(
        css=url_for("docs.asset", filename="swagger-ui.css"),
        bundle=url_for("docs.asset", filename="swagger-ui-bundle.js"),
        init=url_for("docs.init_script"),
        phone_css=_PHONE_CSS,
    )
    response = Response(page, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = _DOCS_POLICY
    return response


@blueprint.get("/docs/dunscan-init.js")
def init_script() -> Response:
    config = {"url": url_for("docs.openapi_json"), "dom_id": "#swagger-ui", "deepLinking": True}
    script = f"window.onload = () => {{ window.ui = SwaggerUIBundle({json.dumps(config)}); }};\n"
    return Response(script, content_type="text/javascript; charset=utf-8")


@blueprint.get("/docs/<path:filename>")
def asset(filename: str) -> Response:
    return send_from_directory(SWAGGER_UI_DIR, filename)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
