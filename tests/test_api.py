"""The HTTP API through Flask's test client: every endpoint, every error class, and the logs."""

from __future__ import annotations

import io
import json
import logging
import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate as validate_openapi

from service import create_app
from service.engine.pipeline import Analyzer
from service.engine.schemas import Verdict
from service.logs import JsonFormatter, mask_numbers

SCAM_TEXT = "【支付宝】您的借呗已逾期，账户将被冻结，请缴纳解冻费后联系专员17123456789"
LEGIT_TEXT = "【支付宝】您的花呗本期账单1,280.00元将于11月25日到期，请通过支付宝App按时还款。"
MOBILE = "17123456789"


# --- POST /v1/check ------------------------------------------------------------------------------


def test_check_returns_the_verdict_contract(client: FlaskClient) -> None:
    response = client.post("/v1/check", json={"sender": "+86 171 2345 6789", "text": SCAM_TEXT})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    verdict = Verdict.model_validate(response.get_json())
    assert verdict.category == "scam"
    assert verdict.level == "high"
    assert verdict.sender is not None and verdict.sender.normalized == "+8617123456789"
    assert "fee_unfreeze" in {signal.id for signal in verdict.signals}
    evidence = next(s for s in verdict.signals if s.id == "fee_unfreeze")
    assert evidence.span is not None
    assert SCAM_TEXT[evidence.span[0] : evidence.span[1]] == evidence.evidence


def test_check_matches_the_analyzer(client: FlaskClient, analyzer: Analyzer) -> None:
    """The API adds transport, nothing else: its verdict is the pipeline's verdict."""
    from service.engine.schemas import parse_record

    record = {"sender": "95188", "text": LEGIT_TEXT}
    expected = analyzer.check(parse_record(record), lang="zh").model_dump(mode="json")
    assert client.post("/v1/check", json=record).get_json() == expected


def test_a_text_without_sender_is_fine(client: FlaskClient) -> None:
    response = client.post("/v1/check", json={"text": SCAM_TEXT})
    assert response.status_code == 200
    assert response.get_json()["sender"] is None
    assert response.get_json()["category"] == "scam"


def test_a_call_record(client: FlaskClient) -> None:
    call = {"kind": "call", "sender": "+86 171 2345 6789", "duration_s": 42, "direction": "missed"}
    response = client.post("/v1/check", json=call)
    assert response.status_code == 200
    assert response.get_json()["kind"] == "call"
    assert response.get_json()["sender"]["type"] == "virtual_mobile"


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda c: c.post("/v1/check", data={"text": SCAM_TEXT}), id="form"),
        pytest.param(
            lambda c: c.post(
                "/v1/check",
                data={"text": SCAM_TEXT, "sender": ""},
                content_type="multipart/form-data",
            ),
            id="multipart-empty-sender",
        ),
        pytest.param(
            lambda c: c.post(
                "/v1/check", data=SCAM_TEXT.encode(), content_type="text/plain; charset=utf-8"
            ),
            id="text-plain",
        ),
        pytest.param(
            lambda c: c.post(
                "/v1/check", data=SCAM_TEXT.encode("gbk"), content_type="text/plain; charset=gbk"
            ),
            id="text-plain-gbk",
        ),
        pytest.param(
            lambda c: c.post(
                "/v1/check",
                data=json.dumps({"text": SCAM_TEXT, "sender": "  "}),
                content_type="application/vnd.shortcut+json",
            ),
            id="json-suffix-blank-sender",
        ),
    ],
)
def test_shortcut_shapes_give_the_same_verdict(
    client: FlaskClient, send: Callable[[FlaskClient], Any]
) -> None:
    """HTTP Shortcuts and Tasker send forms or bare text; the verdict is the JSON one."""
    expected = client.post("/v1/check", json={"text": SCAM_TEXT}).get_json()
    response = send(client)
    assert response.status_code == 200
    assert response.get_json() == expected


def test_text_plain_body_with_sender_in_the_query(client: FlaskClient) -> None:
    sender = "+86 171 2345 6789"
    expected = client.post("/v1/check", json={"text": SCAM_TEXT, "sender": sender}).get_json()
    response = client.post(
        "/v1/check?sender=%2B86%20171%202345%206789",
        data=SCAM_TEXT.encode(),
        content_type="text/plain",
    )
    assert response.get_json() == expected
    assert expected["sender"]["raw"] == sender


def test_accept_text_plain_gives_the_summary(client: FlaskClient) -> None:
    response = client.post("/v1/check", json={"text": SCAM_TEXT}, headers={"Accept": "text/plain"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    summary = response.get_data(as_text=True)
    assert "高风险" in summary
    assert "{" not in summary


@pytest.mark.parametrize(
    ("query", "headers"),
    [("?lang=en", {}), ("", {"Accept-Language": "en-US,en;q=0.9"}), ("?lang=EN", {})],
)
def test_english_advice(client: FlaskClient, query: str, headers: dict[str, str]) -> None:
    chinese = client.post("/v1/check", json={"text": SCAM_TEXT}).get_json()["advice"]
    english = client.post(f"/v1/check{query}", json={"text": SCAM_TEXT}, headers=headers)
    advice = english.get_json()["advice"]
    assert advice and advice != chinese
    assert all(re.search(r"[A-Za-z]{3}", line) for line in advice)


def test_english_summary(client: FlaskClient) -> None:
    response = client.post(
        "/v1/check?lang=en", data={"text": SCAM_TEXT}, headers={"Accept": "text/plain"}
    )
    assert "HIGH RISK" in response.get_data(as_text=True)


# --- POST /v1/check/batch ------------------------------------------------------------------------


def test_batch_keeps_order_and_isolates_bad_items(client: FlaskClient) -> None:
    records = [
        {"text": SCAM_TEXT},
        {"text": 42},
        "not an object",
        {"sender": "95188", "text": LEGIT_TEXT},
        {"kind": "call"},
        {"text": "x" * 5001},
    ]
    response = client.post("/v1/check/batch", json={"records": records})
    assert response.status_code == 200
    body = response.get_json()
    assert body["count"] == 6
    assert body["errors"] == 4
    assert [item["index"] for item in body["results"]] == list(range(6))
    assert body["results"][0]["verdict"]["category"] == "scam"
    assert body["results"][3]["verdict"]["category"] == "legit"
    errors = {item["index"]: item["error"] for item in body["results"] if "error" in item}
    assert errors[1]["code"] == "validation_error" and errors[1]["field"] == "records[1].text"
    assert errors[2]["field"] == "records[2]"
    assert errors[4]["field"] == "records[4].sender"
    assert errors[5]["code"] == "text_too_long" and errors[5]["field"] == "records[5].text"


def test_batch_verdicts_equal_single_checks(client: FlaskClient) -> None:
    records = [{"text": SCAM_TEXT}, {"sender": "95188", "text": LEGIT_TEXT}]
    batch = client.post("/v1/check/batch?lang=en", json={"records": records}).get_json()
    singles = [client.post("/v1/check?lang=en", json=r).get_json() for r in records]
    assert [item["verdict"] for item in batch["results"]] == singles


# --- GET /v1/numbers, /v1/brands -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "normalized", "kind", "brand", "official"),
    [
        ("/v1/numbers/95188", "95188", "official_hotline", "alipay", True),
        ("/v1/numbers/%2B86%20171%202345%206789", "+8617123456789", "virtual_mobile", None, False),
        ("/v1/numbers/+86%20171%202345%206789", "+8617123456789", "virtual_mobile", None, False),
        ("/v1/numbers/0086-171-2345-6789", "+8617123456789", "virtual_mobile", None, False),
    ],
)
def test_number_classification(
    client: FlaskClient,
    path: str,
    normalized: str,
    kind: str,
    brand: str | None,
    official: bool,
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["normalized"], body["type"], body["brand"], body["official"]) == (
        normalized,
        kind,
        brand,
        official,
    )
    assert (body["brand_name"] is None) == (brand is None)


def test_garbage_number_is_classified_invalid(client: FlaskClient) -> None:
    response = client.get("/v1/numbers/abc")
    assert response.status_code == 200
    assert response.get_json()["type"] == "invalid"


def test_brands_list_official_contacts(client: FlaskClient, analyzer: Analyzer) -> None:
    response = client.get("/v1/brands")
    assert response.status_code == 200
    brands = {brand["id"]: brand for brand in response.get_json()["brands"]}
    assert set(brands) == set(analyzer.directory.brands)
    assert "95188" in [entry["number"] for entry in brands["alipay"]["voice"]]
    assert brands["alipay"]["verified"] is True
    assert brands["qubei"]["verified"] is False  # a known brand without a verified number
    assert all(entry["source"] for entry in brands["alipay"]["voice"])
    # A carrier's genuine SMS link regional sites too: its lists say they are not exhaustive.
    assert (brands["cmcc"]["category"], brands["cmcc"]["open_lists"]) == ("service", True)
    assert brands["alipay"]["open_lists"] is False


# --- health, readiness, metrics, docs ------------------------------------------------------------


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_reports_versions(client: FlaskClient, analyzer: Analyzer) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["versions"] == analyzer.versions
    assert body["checks"]["rules"] and body["checks"]["numbers"]
    assert body["checks"]["model"] == (analyzer.versions["model"] is not None)


def test_readyz_when_a_model_is_required(
    make_app: Callable[..., Flask], analyzer: Analyzer
) -> None:
    response = make_app(REQUIRE_MODEL=True).test_client().get("/readyz")
    model_loaded = analyzer.versions["model"] is not None
    assert response.status_code == (200 if model_loaded else 503)
    assert response.get_json()["status"] == ("ready" if model_loaded else "not_ready")


def _sample(metrics_text: str, name: str, **labels: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_and_verdicts_without_personal_data(client: FlaskClient) -> None:
    client.post("/v1/check", json={"text": SCAM_TEXT})
    client.post("/v1/check", json={"text": SCAM_TEXT})
    client.get(f"/v1/numbers/{MOBILE}")
    client.get("/no/such/page")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert _sample(text, "dunscan_verdicts_total", category="scam", kind="sms") == 2
    assert _sample(text, "dunscan_http_requests_total", endpoint="/v1/check", status="200") == 2
    assert _sample(text, "dunscan_http_requests_total", endpoint="/v1/numbers/<number>") == 1
    assert _sample(text, "dunscan_http_requests_total", endpoint="<unmatched>", status="404") == 1
    assert _sample(text, "dunscan_http_request_duration_seconds_count", endpoint="/v1/check") == 2
    assert MOBILE not in text and "/no/such/page" not in text


def test_openapi_is_valid_and_covers_every_api_route(client: FlaskClient, app: Flask) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    validate_openapi(document)
    documented = {re.sub(r"\{(\w+)\}", r"<\1>", path) for path in document["paths"]}
    ours = {"api", "health", "metrics", "docs", "webhooks"}
    routes = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)  # /hooks/sf/<sf_token:token>
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ours
        and rule.endpoint not in {"docs.asset", "docs.init_script"}
    }
    assert routes - {"/docs/"} <= documented
    assert "Verdict" in document["components"]["schemas"]
    duration = document["components"]["schemas"]["CallRecord"]["properties"]["duration_s"]
    assert {"minimum": 0, "type": "integer"} in duration["anyOf"]  # not pydantic's stray "ge"


def test_docs_are_served_offline(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert "<script>" not in html  # no inline script
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 3 and all(asset.startswith("/docs/") for asset in assets)  # no CDN
    fetched = {asset: client.get(asset) for asset in assets}
    assert all(response.status_code == 200 for response in fetched.values())
    assert "/openapi.json" in fetched["/docs/dunscan-init.js"].get_data(as_text=True)
    assert len(fetched["/docs/swagger-ui-bundle.js"].get_data()) > 100_000
    for response in fetched.values():
        response.close()


# --- errors --------------------------------------------------------------------------------------

LONG = "长" * 5001

ERROR_CASES = [
    # (method, path, request kwargs, status, code, field)
    (
        "post",
        "/v1/check",
        {"data": b'{"text": ', "content_type": "application/json"},
        400,
        "malformed_json",
        None,
    ),
    (
        "post",
        "/v1/check",
        {"data": b"", "content_type": "application/json"},
        400,
        "malformed_json",
        None,
    ),
    (
        "post",
        "/v1/check",
        {"data": b"\xff\xfe{}", "content_type": "application/json"},
        400,
        "malformed_json",
        None,
    ),
    (
        "post",
        "/v1/check",
        {"data": b"[" * 100_000, "content_type": "application/json"},
        400,
        "malformed_json",
        None,
    ),
    (
        "post",
        "/v1/check",
        {"data": b"\xb2\xe2", "content_type": "text/plain; charset=utf-8"},
        400,
        "malformed_body",
        None,
    ),
    (
        "post",
        "/v1/check",
        {"data": b"<sms/>", "content_type": "application/xml"},
        415,
        "unsupported_media_type",
        None,
    ),
    ("post", "/v1/check", {"data": b"text"}, 415, "unsupported_media_type", None),
    (
        "post",
        "/v1/check/batch",
        {"data": b"x", "content_type": "text/plain"},
        415,
        "unsupported_media_type",
        None,
    ),
    ("post", "/v1/check", {"json": ["a list"]}, 422, "validation_error", None),
    ("post", "/v1/check", {"json": {}}, 422, "validation_error", "text"),
    ("post", "/v1/check", {"json": {"text": 42}}, 422, "validation_error", "text"),
    ("post", "/v1/check", {"json": {"text": "   "}}, 422, "validation_error", "text"),
    ("post", "/v1/check", {"data": {"sender": "95188"}}, 422, "validation_error", "text"),
    ("post", "/v1/check", {"json": {"kind": "fax", "text": "x"}}, 422, "validation_error", "kind"),
    ("post", "/v1/check", {"json": {"kind": "call"}}, 422, "validation_error", "sender"),
    (
        "post",
        "/v1/check",
        {"json": {"kind": "call", "sender": "95188", "duration_s": "long"}},
        422,
        "validation_error",
        "duration_s",
    ),
    (
        "post",
        "/v1/check",
        {"json": {"kind": "call", "sender": "95188", "duration_s": -1}},
        422,
        "validation_error",
        "duration_s",
    ),
    (
        "post",
        "/v1/check",
        {"json": {"text": "x", "received_at": "yesterday"}},
        422,
        "validation_error",
        "received_at",
    ),
    (
        "post",
        "/v1/check",
        {"json": {"text": "x", "sender": "1" * 65}},
        422,
        "validation_error",
        "sender",
    ),
    ("post", "/v1/check?lang=fr", {"json": {"text": "x"}}, 422, "validation_error", "lang"),
    ("post", "/v1/check", {"json": {"text": LONG}}, 413, "text_too_long", "text"),
    ("post", "/v1/check", {"data": {"text": LONG}}, 413, "text_too_long", "text"),
    ("post", "/v1/check/batch", {"json": [{"text": "x"}]}, 422, "validation_error", None),
    (
        "post",
        "/v1/check/batch",
        {"json": {"records": {"text": "x"}}},
        422,
        "validation_error",
        "records",
    ),
    ("post", "/v1/check/batch", {"json": {"records": []}}, 422, "validation_error", "records"),
    ("post", "/v1/check/batch", {"json": {}}, 422, "validation_error", "records"),
    (
        "post",
        "/v1/check/batch",
        {"json": {"records": [{"text": "x"}] * 101}},
        413,
        "batch_too_large",
        "records",
    ),
    ("get", "/v1/numbers/" + "1" * 65, {}, 422, "validation_error", "number"),
    ("get", "/v1/check", {}, 405, "method_not_allowed", None),
    ("delete", "/v1/brands", {}, 405, "method_not_allowed", None),
    ("post", "/healthz", {}, 405, "method_not_allowed", None),
    ("get", "/v2/check", {}, 404, "not_found", None),
    ("get", "/v1/numbers/", {}, 404, "not_found", None),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "field"),
    ERROR_CASES,
    ids=[f"{case[3]}-{case[4]}-{index}" for index, case in enumerate(ERROR_CASES)],
)
def test_errors_are_json(
    client: FlaskClient,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"] and "<" not in error["message"]
    assert response.headers["X-Request-ID"]


def test_405_lists_the_allowed_methods(client: FlaskClient) -> None:
    response = client.get("/v1/check")
    assert "POST" in response.headers["Allow"]


def test_validation_messages_are_readable(client: FlaskClient) -> None:
    error = client.post("/v1/check", json={"kind": "fax", "text": "x"}).get_json()["error"]
    assert error["message"] == "kind must be 'sms' or 'call'"
    error = client.post("/v1/check", json={}).get_json()["error"]
    assert error["message"] == "Field required"


@pytest.mark.parametrize(
    ("config", "send", "code", "field"),
    [
        ({"MAX_BODY_BYTES": 100}, {"json": {"text": "x" * 200}}, "body_too_large", None),
        ({"MAX_BODY_BYTES": 100}, {"data": {"text": "x" * 200}}, "body_too_large", None),
        ({"MAX_TEXT_CHARS": 10}, {"json": {"text": "x" * 11}}, "text_too_long", "text"),
    ],
)
def test_configured_limits(
    make_app: Callable[..., Flask],
    config: dict[str, Any],
    send: dict[str, Any],
    code: str,
    field: str | None,
) -> None:
    response = make_app(**config).test_client().post("/v1/check", **send)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["field"] == field


def test_batch_limit_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, analyzer: Analyzer, database_url: str
) -> None:
    monkeypatch.setenv("DUNSCAN_MAX_BATCH", "2")
    app = create_app({"TESTING": True, "DATABASE_URL": database_url}, analyzer=analyzer)
    assert app.config["MAX_BATCH"] == 2
    client = app.test_client()
    assert client.post("/v1/check/batch", json={"records": [{"text": "x"}] * 2}).status_code == 200
    response = client.post("/v1/check/batch", json={"records": [{"text": "x"}] * 3})
    assert response.status_code == 413
    assert response.get_json()["error"]["message"] == "At most 2 records per request."


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ({"MAX_BATCH": 0}, "DUNSCAN_MAX_BATCH"),
        ({"MAX_TEXT_CHARS": "many"}, "DUNSCAN_MAX_TEXT_CHARS"),
        ({"RATELIMIT": "lots"}, "DUNSCAN_RATELIMIT"),
        ({"LOG_LEVEL": "chatty"}, "DUNSCAN_LOG_LEVEL"),
    ],
)
def test_bad_configuration_stops_the_app(
    make_app: Callable[..., Flask], config: dict[str, Any], names: str
) -> None:
    with pytest.raises(ValueError, match=names):
        make_app(**config)


# --- API keys and rate limits --------------------------------------------------------------------


@pytest.fixture
def keyed_client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(API_KEYS="alpha-key, beta-key").test_client()


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("post", "/v1/check", {}, 401),
        ("post", "/v1/check", {"X-API-Key": "wrong"}, 401),
        ("post", "/v1/check", {"X-API-Key": "alpha-key "}, 401),
        ("post", "/v1/check", {"X-API-Key": "alpha-key"}, 200),
        ("post", "/v1/check", {"X-API-Key": "beta-key"}, 200),
        ("get", "/v1/brands", {}, 401),
        ("get", "/v1/numbers/95188", {"X-API-Key": "beta-key"}, 200),
        ("get", "/healthz", {}, 200),
        ("get", "/readyz", {}, 200),
        ("get", "/metrics", {}, 200),
        ("get", "/openapi.json", {}, 200),
    ],
)
def test_api_keys(
    keyed_client: FlaskClient, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    kwargs = {"json": {"text": SCAM_TEXT}} if method == "post" else {}
    response = getattr(keyed_client, method)(path, headers=headers, **kwargs)
    assert response.status_code == status
    if status == 401:
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert "X-API-Key" in response.headers["WWW-Authenticate"]


def test_rate_limit_answers_429_with_retry_after(make_app: Callable[..., Flask]) -> None:
    client = make_app(RATELIMIT="2/minute").test_client()
    responses = [client.post("/v1/check", json={"text": "x"}) for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 429]
    # The headers describe one of the limits in force (requests, or characters: see
    # tests/test_hostile.py); the refusal below is the request limit's.
    assert int(responses[0].headers["X-RateLimit-Remaining"]) >= 1
    assert "Retry-After" not in responses[0].headers  # only a refusal asks to wait
    limited = client.get("/v1/brands")
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.headers["X-Request-ID"]
    # Probes and metrics stay reachable for monitoring.
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_rate_limits_count_per_api_key(make_app: Callable[..., Flask]) -> None:
    client = make_app(RATELIMIT="1/minute", API_KEYS="alpha-key,beta-key").test_client()

    def check(key: str) -> int:
        return client.post("/v1/check", json={"text": "x"}, headers={"X-API-Key": key}).status_code

    assert [check("alpha-key"), check("alpha-key"), check("beta-key")] == [200, 429, 200]


# --- request ids, logs, internal errors ----------------------------------------------------------


def test_request_id_is_echoed_or_generated(client: FlaskClient) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    unsafe = client.get("/healthz", headers={"X-Request-ID": 'a"b c'})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-ID"])


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line of every logger, formatted as the service formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def test_logs_carry_no_text_and_no_number(
    client: FlaskClient, app: Flask, captured_logs: io.StringIO
) -> None:
    sender = "+86 171 2345 6789"
    client.post(
        "/v1/check",
        json={"sender": sender, "text": SCAM_TEXT},
        headers={"X-Request-ID": "req-logs-1"},
    )
    client.post("/v1/check", data={"sender": sender, "text": SCAM_TEXT})
    client.post("/v1/check/batch", json={"records": [{"text": SCAM_TEXT}, {"text": 1}]})
    client.get(f"/v1/numbers/{MOBILE}")
    client.post("/v1/check", json={"text": SCAM_TEXT, "kind": "fax"})

    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    checks = [line for line in lines if line["msg"] == "check"]
    assert len(checks) == 3  # the logging really ran
    assert checks[0]["request_id"] == "req-logs-1"
    assert checks[0]["category"] == "scam" and "fee_unfreeze" in checks[0]["signals"]
    logged = captured_logs.getvalue()
    for secret in (SCAM_TEXT, "解冻费", MOBILE, "2345 6789", "23456789"):
        assert secret not in logged


def test_log_time_is_isoformat_to_the_millisecond() -> None:
    """The formatter formats each second once; a line's time must still read exactly as
    datetime's ISO format, across seconds and at the microsecond rounding that carries into
    the next second."""
    formatter = JsonFormatter()
    rng = random.Random(46)
    moments = [0.0, 1.9995, 1.9999996, 1_733_486_400.9999999, 1_120_656_861.8549998]
    moments += [rng.uniform(0, 2e9) for _ in range(20_000)]
    moments += [1.7e9 + step / 997 for step in range(5_000)]  # many lines within each second
    for created in moments:
        record = logging.LogRecord("service", logging.INFO, __file__, 1, "check", (), None)
        record.created = created
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(formatter.format(record))["ts"] == expected


def test_internal_errors_are_json_500_without_the_message(
    app: Flask, captured_logs: io.StringIO
) -> None:
    @app.get("/explode")
    def explode() -> None:
        raise RuntimeError(f"failed on {SCAM_TEXT}")

    response = app.test_client().get("/explode", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    error = response.get_json()["error"]
    assert error["code"] == "internal_error"
    assert error["request_id"] == "req-500"
    assert SCAM_TEXT not in response.get_data(as_text=True)
    logged = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    failure = next(line for line in logged if line["msg"] == "unhandled error")
    assert failure["request_id"] == "req-500"
    assert failure["exc_type"] == "builtins.RuntimeError"
    assert any("explode" in frame for frame in failure["stack"])
    assert SCAM_TEXT not in captured_logs.getvalue()


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("17123456789", "171****6789"),
        ("from +86 171 2345 6789", "from +86171****6789"),
        ("0086-171-2345-6789", "0086171****6789"),
        ("号码17123456789请回电", "号码171****6789请回电"),
        ("400-123-4567", "400****"),
        ("95188", "95188"),
        ("rules 2026-11-22-ab12cd", "rules 2026-11-22-ab12cd"),
        ("request a1234567b", "request a1234567b"),
        # a hash that opens with seven digits (a rules version) is no phone number either
        ('"rules": "4061234567e989"', '"rules": "4061234567e989"'),
        ("took 1234 ms", "took 1234 ms"),
    ],
)
def test_mask_numbers(raw: str, masked: str) -> None:
    assert mask_numbers(raw) == masked
