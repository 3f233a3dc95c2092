"""Hostile input an internet-facing instance meets (issue 12): every one answered with a JSON 4xx
naming the problem, or an error entry for that record alone inside a batch; never a 500.

The requests are the minimal reproductions from the issue, sent as raw bytes so that nothing in
the test client cleans them up first.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder

from service.app import create_app
from service.engine.pipeline import Analyzer
from service.phones.store import HookInfo, Store, create_hook, store_for

LONE_SURROGATE_ESCAPED = b'"\\ud800 \xe4\xbd\xa0\xe5\xa5\xbd"'  # "\ud800 你好" as a JSON escape
LONE_SURROGATE_RAW = b'"\xed\xa0\x80 \xe4\xbd\xa0\xe5\xa5\xbd"'  # the same as raw CESU bytes
HUGE_INT = b"1" * 5000  # over Python's 4,300-digit int conversion limit
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def app(tmp_path: Any, analyzer: Analyzer) -> Flask:
    config = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hostile.sqlite3'}",
        "RATELIMIT_ENABLED": False,
        "NOTIFY_WORKER": 0,
    }
    return create_app(config, analyzer=analyzer)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def signed_hook(app: Flask) -> HookInfo:
    return create_hook("signed", secret="S3CRET-x", store=store_for(app))


@pytest.fixture
def open_hook(app: Flask) -> HookInfo:
    return create_hook("open", store=store_for(app))


def post_json(client: FlaskClient, path: str, body: bytes) -> Any:
    return client.post(path, data=body, content_type="application/json")


def assert_json_4xx(response: Any, field: str | None = None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data()[:200])
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["message"]
    if field is not None:
        assert error["field"] == field
    return error


@pytest.mark.parametrize("surrogate", [LONE_SURROGATE_ESCAPED, LONE_SURROGATE_RAW])
@pytest.mark.parametrize("field", ["text", "sender", "id"])
def test_a_lone_surrogate_in_a_check_is_a_422_naming_the_field(
    client: FlaskClient, surrogate: bytes, field: str
) -> None:
    record = {"text": b'"hello"', "sender": b'"95188"', "id": b'"a"'}
    record[field] = surrogate
    body = b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in record.items()) + b"}"
    error = assert_json_4xx(post_json(client, "/v1/check", body), field)
    assert "surrogate" in error["message"]


@pytest.mark.parametrize("surrogate", [LONE_SURROGATE_ESCAPED, LONE_SURROGATE_RAW])
def test_a_lone_surrogate_in_one_batch_record_fails_that_record_only(
    client: FlaskClient, surrogate: bytes
) -> None:
    body = b'{"records":[{"text":%s},{"text":"\xe4\xbd\xa0\xe5\xa5\xbd"}]}' % surrogate
    response = post_json(client, "/v1/check/batch", body)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert results[0]["error"]["field"] == "records[0].text"
    assert results[1]["verdict"]["level"] in ("high", "medium", "low")
    assert response.get_json()["errors"] == 1


def test_a_number_phonenumbers_cannot_parse_is_answered(client: FlaskClient) -> None:
    """ "179xx00…" reads to phonenumbers as China's IP-dialling prefix and made it raise: as a
    sender, in a text and in a number lookup it is an unallocated segment, not a 500."""
    number = "17984008343"
    as_sender = client.post("/v1/check", json={"sender": number, "text": "你好"})
    assert as_sender.status_code == 200
    assert as_sender.get_json()["sender"]["type"] == "invalid"
    in_text = client.post("/v1/check", json={"text": f"请联系{number}处理"})
    assert in_text.status_code == 200
    looked_up = client.get(f"/v1/numbers/{number}")
    assert looked_up.status_code == 200
    assert looked_up.get_json()["detail"] == "unallocated_mobile_segment"


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/check", b'{"text":"hello","id":%s}' % HUGE_INT),
        ("/v1/check", b'{"text":"hello","duration_s":%s}' % HUGE_INT),
        ("/v1/check/batch", b'{"records":[{"text":"hello","id":%s}]}' % HUGE_INT),
        ("/v1/check/batch", b'{"records":[{"text":"hello"}],"x":[%s]}' % HUGE_INT),
    ],
)
def test_an_integer_of_5000_digits_is_a_400(client: FlaskClient, path: str, body: bytes) -> None:
    error = assert_json_4xx(post_json(client, path, body))
    assert "digits" in error["message"]


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_deep_json_to_a_hook_is_refused_before_the_signature_check_without_a_500(
    client: FlaskClient, signed_hook: HookInfo, content_type: str
) -> None:
    response = client.post(signed_hook.path, data=DEEP_JSON, content_type=content_type)
    assert_json_4xx(response)


def test_an_integer_of_5000_digits_to_a_hook_is_a_400(
    client: FlaskClient, open_hook: HookInfo
) -> None:
    body = b'{"from":"95188","org_content":"hello","x":%s}' % HUGE_INT
    error = assert_json_4xx(post_json(client, open_hook.path, body))
    assert "digits" in error["message"]


@pytest.mark.parametrize("surrogate", [LONE_SURROGATE_ESCAPED, LONE_SURROGATE_RAW])
@pytest.mark.parametrize("field", ["org_content", "from"])
def test_a_lone_surrogate_in_a_webhook_is_a_422(
    client: FlaskClient, open_hook: HookInfo, surrogate: bytes, field: str
) -> None:
    fields = {"from": b'"95188"', "org_content": b'"hello"'}
    fields[field] = surrogate
    body = b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in fields.items()) + b"}"
    error = assert_json_4xx(post_json(client, open_hook.path, body))
    assert "surrogate" in error["message"]


def test_a_lone_surrogate_in_the_web_form_is_shown_as_an_input_problem(
    client: FlaskClient,
) -> None:
    # A browser form never sends one, but a script can; the page answers with its error message.
    response = client.post(
        "/", data=b"text=a%ED%A0%80", content_type="application/x-www-form-urlencoded"
    )
    # werkzeug decodes the bytes as U+FFFD, which is harmless text: a verdict page.
    assert response.status_code == 200
    assert response.mimetype == "text/html"


def test_every_surrogate_reproduction_gives_a_json_body_that_encodes(client: FlaskClient) -> None:
    # The original failure: the verdict echoed the sender and the response could not be encoded.
    response = post_json(client, "/v1/check", b'{"text":"hello","sender":"\\udfff"}')
    json.dumps(response.get_json(), ensure_ascii=False).encode("utf-8")
    assert_json_4xx(response, "sender")


def test_the_cli_skips_hostile_lines_with_their_line_numbers(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.cli.main import main

    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'{"text":"\\ud800"}\n'
        b'{"text":"hello","id":%s}\n' % HUGE_INT + b"[" * 100_000 + b"\n" + b'{"text":"ok"}\n'
    )
    status = main(["score", str(source), "-o", str(tmp_path / "out.jsonl"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 0
    assert "line 1: skipped: text" in err and "surrogate" in err
    assert "line 2: skipped: a number with too many digits" in err
    assert "line 3: skipped: " in err
    assert "scored 1, skipped 3" in err


# --- API keys and the web form --------------------------------------------------------------

SCAM_TEXT = "【支付宝】您的借呗已逾期，账户将被冻结，请缴纳解冻费后联系专员17123456789"


@pytest.fixture
def keyed_client(tmp_path: Any, analyzer: Analyzer) -> FlaskClient:
    config = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'keyed.sqlite3'}",
        "API_KEYS": "alpha-key",
        "NOTIFY_WORKER": 0,
    }
    return create_app(config, analyzer=analyzer).test_client()


@pytest.mark.parametrize(
    "path, form",
    [("/", {"text": SCAM_TEXT}), ("/share", {"text": SCAM_TEXT, "title": "", "url": ""})],
)
@pytest.mark.parametrize("key", [None, "", "wrong-key"])
def test_with_api_keys_the_form_gives_no_verdict_without_a_valid_key(
    keyed_client: FlaskClient, path: str, form: dict[str, str], key: str | None
) -> None:
    if key is not None:
        form = {**form, "api_key": key}
    response = keyed_client.post(path, data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert 'id="verdict"' not in page
    # The shared message is kept on the page, with a field for the key, so nothing is lost.
    assert SCAM_TEXT in page
    assert 'name="api_key"' in page


@pytest.mark.parametrize("path", ["/", "/share"])
def test_with_api_keys_the_form_gives_a_verdict_with_the_key(
    keyed_client: FlaskClient, path: str
) -> None:
    response = keyed_client.post(path, data={"text": SCAM_TEXT, "api_key": "alpha-key"})
    assert response.status_code == 200
    assert 'id="verdict"' in response.get_data(as_text=True)


def test_without_api_keys_the_form_asks_for_none(client: FlaskClient) -> None:
    response = client.post("/", data={"text": SCAM_TEXT})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="verdict"' in page and 'name="api_key"' not in page


# --- forged Host -------------------------------------------------------------------------------

EVIL = "evil.example"
SETUP_PATHS = ["/setup", "/setup/http-shortcuts.json", "/setup/qr.svg?target=http_shortcuts"]


@pytest.mark.parametrize("path", SETUP_PATHS)
def test_a_forged_host_never_reaches_the_setup_links(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers={"Host": EVIL})
    assert EVIL not in response.get_data(as_text=True)
    assert EVIL not in str(response.headers)
    # Without DUNSCAN_PUBLIC_URL and with a host nobody listed, no link can be built: a JSON
    # 400 tells the operator what to set.
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "untrusted_host"


@pytest.mark.parametrize("path", SETUP_PATHS)
def test_setup_links_come_from_the_public_url_whatever_the_host(
    tmp_path: Any, analyzer: Analyzer, path: str
) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
            "PUBLIC_URL": "https://dunscan.example.org",
        },
        analyzer=analyzer,
    )
    response = app.test_client().get(path, headers={"Host": EVIL})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert EVIL not in body and "dunscan.example.org" in body


@pytest.mark.parametrize(
    "host, trusted",
    [
        ("dunscan.example.org", True),
        ("dunscan.example.org:8443", True),
        ("phone.lan.example.net", True),
        ("localhost:8000", True),
        ("[::1]:8000", True),
        (EVIL, False),
        ("example.net", True),  # a leading dot lists the domain and its subdomains
        ("notexample.net", False),
        ("dunscan.example.org.evil.example", False),
    ],
)
def test_listed_hosts_may_build_links(
    tmp_path: Any, analyzer: Analyzer, host: str, trusted: bool
) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
            "PUBLIC_HOSTS": "dunscan.example.org, .example.net",
        },
        analyzer=analyzer,
    )
    response = app.test_client().get("/setup/http-shortcuts.json", headers={"Host": host})
    if trusted:
        assert response.status_code == 200
        url = response.get_json()["categories"][0]["shortcuts"][0]["url"]
        assert url == f"http://{host}/v1/check"
    else:
        assert response.status_code == 400


@pytest.mark.parametrize("path", ["//v1//brands", "/v1//brands", "//healthz"])
def test_merge_slash_redirects_are_json_with_a_relative_location(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path, headers={"Host": EVIL})
    assert response.status_code == 308
    assert response.mimetype == "application/json"
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//")
    assert EVIL not in location
    assert response.get_json()["location"] == location


# --- leaks: tokens in logged paths, /metrics series --------------------------------------------


@pytest.mark.parametrize("method", ["DELETE", "TRACE", "OPTIONS", "PROPFIND", "GET", "POST"])
def test_the_path_an_access_log_reads_never_holds_the_token_whatever_the_method(
    app: Flask, open_hook: HookInfo, method: str
) -> None:
    # gunicorn's access log reads PATH_INFO (and RAW_URI) from this environ after the response.
    token = open_hook.token or ""
    path = open_hook.path + "&content=17123456789"
    environ = EnvironBuilder(path=path, method=method).get_environ()
    environ["RAW_URI"] = environ["REQUEST_URI"] = path
    statuses: list[str] = []
    app.wsgi_app(environ, lambda status, headers: statuses.append(status))
    for key in ("PATH_INFO", "RAW_URI", "REQUEST_URI"):
        assert token not in environ[key], (method, key, statuses)
    assert environ["PATH_INFO"] == f"/hooks/sf/{token[:4]}…"


def test_the_json_log_formatter_cuts_hook_tokens_from_any_field() -> None:
    import logging

    from service.logs import JsonFormatter

    token = "AbCdEfGhIjKlMnOpQrStUvWx"
    record = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, "request", (), None)
    record.path = f"/hooks/sf/{token}&content=hello"
    record.method = "TRACE"
    line = JsonFormatter().format(record)
    assert token not in line and "hello" not in line
    assert json.loads(line)["path"] == "/hooks/sf/AbCd…"


def test_made_up_methods_share_one_metrics_label(client: FlaskClient) -> None:
    for number in range(50):
        client.open("/healthz", method=f"FAKE{number}")
    metrics = client.get("/metrics").get_data(as_text=True)
    series = [
        line for line in metrics.splitlines() if line.startswith("dunscan_http_requests_total")
    ]
    assert not any("FAKE" in line for line in series)
    assert any('method="other"' in line for line in series)
    assert len(series) < 10


def queue_warning(app: Flask, notify_url: str) -> tuple[Store, list[str]]:
    """Post a scam to a new hook that pushes to `notify_url`; the store and the non-blank lines of
    the queued push (body and title), which must not outlive its delivery."""
    from test_notify import SCAM_SENDER, SCAM_TEXT

    from service.phones.store import Outbox

    store = store_for(app)
    hook = create_hook("residue", notify_url=notify_url, store=store)
    response = app.test_client().post(
        hook.path, data={"from": SCAM_SENDER, "org_content": SCAM_TEXT}
    )
    assert response.get_json()["notified"] is True
    with store.session() as session:
        (row,) = session.query(Outbox).all()
        return store, [line for line in row.body.splitlines() if line.strip()] + [row.title]


def test_no_warning_text_is_left_in_the_database_files_after_delivery(
    tmp_path: Any, analyzer: Analyzer
) -> None:
    from test_notify import Receiver

    from service.phones.notify import Deliverer

    database = tmp_path / "residue.sqlite3"
    app = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{database}", "NOTIFY_WORKER": 0},
        analyzer=analyzer,
    )
    receiver = Receiver()
    try:
        store, lines = queue_warning(app, "json+" + receiver.url())
        written = b"".join(path.read_bytes() for path in tmp_path.glob("residue.sqlite3*"))
        assert all(line.encode() in written for line in lines)  # the check can see it
        assert Deliverer(store, app).run_once().delivered == 1
        assert len(receiver.received) == 1
    finally:
        receiver.close()
    files = sorted(tmp_path.glob("residue.sqlite3*"))
    assert database in files
    left = {path.name: path.read_bytes() for path in files}
    for line in lines:
        for name, content in left.items():
            assert line.encode() not in content, (name, line)


# --- the schema says what the service does ------------------------------------------------------


def _record_schema(client: FlaskClient, name: str) -> dict[str, Any]:
    return client.get("/openapi.json").get_json()["components"]["schemas"][name]


def test_the_schema_states_the_text_and_sender_limits(client: FlaskClient) -> None:
    sms = _record_schema(client, "SmsRecord")["properties"]
    assert sms["text"]["minLength"] == 1 and sms["text"]["maxLength"] == 5000
    assert "pattern" in sms["text"]  # not only whitespace
    sender = next(b for b in sms["sender"]["anyOf"] if b.get("type") == "string")
    assert sender["maxLength"] == 64
    call = _record_schema(client, "CallRecord")["properties"]
    assert call["sender"]["maxLength"] == 64 and call["sender"]["minLength"] == 1


@pytest.mark.parametrize("text", ["", " ", "\u3000\n", "\x1f"])
def test_blank_text_is_refused_and_the_schema_pattern_refuses_it_too(
    client: FlaskClient, text: str
) -> None:
    import re

    pattern = _record_schema(client, "SmsRecord")["properties"]["text"]["pattern"]
    assert re.search(pattern, text) is None
    assert_json_4xx(client.post("/v1/check", json={"text": text}), "text")


def test_a_sender_of_65_characters_is_refused_even_when_padded(client: FlaskClient) -> None:
    padded = "95188" + " " * 60
    assert_json_4xx(client.post("/v1/check", json={"text": "你好", "sender": padded}), "sender")


@pytest.mark.parametrize(
    "received_at", [1700000000, "1700000000", "2026-11-20", "2026-11-20 09:30:00", 1.7e9]
)
def test_received_at_must_be_an_rfc3339_date_time(client: FlaskClient, received_at: Any) -> None:
    response = client.post("/v1/check", json={"text": "你好", "received_at": received_at})
    assert_json_4xx(response, "received_at")


def test_an_rfc3339_received_at_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        "/v1/check", json={"text": "你好", "received_at": "2026-11-20T09:30:00+08:00"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/v1/check?lnag=en", "/v1/check?lang=en&debug=1", "/v1/check/batch?sender=1"]
)
def test_unknown_query_parameters_are_refused(client: FlaskClient, path: str) -> None:
    body = {"records": [{"text": "你好"}]} if "batch" in path else {"text": "你好"}
    error = assert_json_4xx(client.post(path, json=body))
    assert error["field"] in ("lnag", "debug", "sender")


def test_an_integral_number_is_an_integer_as_json_schema_says(client: FlaskClient) -> None:
    record = {"kind": "call", "sender": "95188", "duration_s": 42.0, "id": 7.0}
    verdict = client.post("/v1/check", json=record).get_json()
    assert verdict["id"] == 7


# --- limits by work, not by request --------------------------------------------------------------


def _limited_app(tmp_path: Any, analyzer: Analyzer, **config: Any) -> Flask:
    base = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'limits.sqlite3'}",
        "NOTIFY_WORKER": 0,
    }
    return create_app({**base, **config}, analyzer=analyzer)


def test_characters_per_minute_are_limited_beside_requests(
    tmp_path: Any, analyzer: Analyzer
) -> None:
    app = _limited_app(tmp_path, analyzer, RATELIMIT="1000/minute", RATELIMIT_CHARS="3000/minute")
    client = app.test_client()
    long_text = "您的借呗已逾期" * 100  # 700 characters
    for _ in range(3):
        assert client.post("/v1/check", json={"text": long_text}).status_code == 200
    batch = {"records": [{"text": long_text}] * 2}
    refused = client.post("/v1/check/batch", json=batch)
    assert refused.status_code == 429
    assert "characters" in refused.get_json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) > 0
    # Another client address has its own budget.
    other = client.post(
        "/v1/check", json={"text": long_text}, environ_base={"REMOTE_ADDR": "10.9.9.9"}
    )
    assert other.status_code == 200


def test_the_character_budget_counts_per_api_key(tmp_path: Any, analyzer: Analyzer) -> None:
    app = _limited_app(tmp_path, analyzer, API_KEYS="k-one,k-two", RATELIMIT_CHARS="1500/minute")
    client = app.test_client()
    text = {"text": "您的借呗已逾期" * 150}  # 1,050 characters
    assert client.post("/v1/check", json=text, headers={"X-API-Key": "k-one"}).status_code == 200
    assert client.post("/v1/check", json=text, headers={"X-API-Key": "k-one"}).status_code == 429
    assert client.post("/v1/check", json=text, headers={"X-API-Key": "k-two"}).status_code == 200


def test_webhooks_spend_the_character_budget_too(tmp_path: Any, analyzer: Analyzer) -> None:
    app = _limited_app(tmp_path, analyzer, RATELIMIT_CHARS="1500/minute")
    hook = create_hook("budget", store=store_for(app))
    client = app.test_client()
    body = {"from": "95188", "org_content": "您的借呗已逾期" * 150}
    assert client.post(hook.path, json=body).status_code == 200
    body["org_content"] += "。"  # not a duplicate
    assert client.post(hook.path, json=body).status_code == 429


def test_a_bad_character_limit_stops_the_app(tmp_path: Any, analyzer: Analyzer) -> None:
    with pytest.raises(ValueError, match="RATELIMIT_CHARS"):
        _limited_app(tmp_path, analyzer, RATELIMIT_CHARS="lots")


def test_webhook_text_has_a_length_cap(client: FlaskClient, open_hook: HookInfo) -> None:
    body = {"from": "95188", "org_content": "短" * 5001}
    response = client.post(open_hook.path, json=body)
    error = assert_json_4xx(response)
    assert response.status_code == 413 and error["code"] == "text_too_long"


class LockProbingAnalyzer:
    """The real analyzer; while it scores, another connection tries to take the database's write
    lock without waiting. Scoring inside the accepting transaction would hold that lock, so every
    other hook's message would queue behind the slowest scoring."""

    def __init__(self, real: Analyzer, database: Any) -> None:
        self.real = real
        self.database = database
        self.lock_free_while_scoring: list[bool] = []

    def check(self, record: Any, lang: str = "zh") -> Any:
        import sqlite3

        probe = sqlite3.connect(self.database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            self.lock_free_while_scoring.append(True)
        except sqlite3.OperationalError:  # "database is locked"
            self.lock_free_while_scoring.append(False)
        finally:
            probe.close()
        return self.real.check(record, lang=lang)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_webhook_scoring_holds_no_database_write_lock(tmp_path: Any, analyzer: Analyzer) -> None:
    database = tmp_path / "lock.sqlite3"
    probing = LockProbingAnalyzer(analyzer, database)
    app = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{database}", "NOTIFY_WORKER": 0},
        analyzer=probing,  # type: ignore[arg-type]
    )
    hook = create_hook("lock", notify_url="json+http://127.0.0.1:9/x", store=store_for(app))
    client = app.test_client()
    for text in ("【支付宝】您的借呗已逾期，请缴纳解冻费后联系专员17123456789", "今晚一起吃饭吗"):
        assert (
            client.post(hook.path, json={"from": "95188", "org_content": text}).status_code == 200
        )
    assert probing.lock_free_while_scoring == [True, True]


def test_one_maximal_batch_fits_the_default_character_budget(
    tmp_path: Any, analyzer: Analyzer
) -> None:
    # A budget smaller than one maximal batch would refuse it forever (429 on every retry).
    app = _limited_app(tmp_path, analyzer)
    client = app.test_client()
    batch = json.dumps({"records": [{"text": "您" * 5000}] * 100}, ensure_ascii=False)
    headers = {"Content-Type": "application/json"}
    first = client.post("/v1/check/batch", data=batch.encode(), headers=headers)
    assert first.status_code == 200 and first.get_json()["errors"] == 0
    assert client.post("/v1/check/batch", data=batch.encode(), headers=headers).status_code == 429


@pytest.mark.parametrize("number", ["%1F", "%20%20", "%E3%80%80"])
def test_a_blank_number_is_refused_as_its_schema_says(client: FlaskClient, number: str) -> None:
    import re

    document = client.get("/openapi.json").get_json()
    (parameter,) = document["paths"]["/v1/numbers/{number}"]["get"]["parameters"]
    decoded = bytes.fromhex(number.replace("%", "")).decode()
    assert re.search(parameter["schema"]["pattern"], decoded) is None
    assert_json_4xx(client.get(f"/v1/numbers/{number}"), "number")


class GateAnalyzer:
    """The real analyzer; the first record of more than 1,000 characters waits at a gate, so a
    large batch is deterministically in progress while the test sends the others."""

    def __init__(self, real: Analyzer) -> None:
        import threading

        self.real = real
        self.entered = threading.Event()
        self.release = threading.Event()

    def _gate(self, record: Any) -> None:
        if len(record.text or "") > 1000 and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)

    def check(self, record: Any, lang: str = "zh") -> Any:
        self._gate(record)
        return self.real.check(record, lang=lang)

    def check_many(self, records: list[Any], lang: str = "zh") -> list[Any]:
        # A batch is scored in one call (one model pass): the gate holds it the same way.
        for record in records:
            self._gate(record)
        return self.real.check_many(records, lang=lang)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_one_large_batch_at_a_time_per_process_and_ordinary_work_goes_on(
    tmp_path: Any, analyzer: Analyzer
) -> None:
    import threading

    gate = GateAnalyzer(analyzer)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'gate.sqlite3'}",
            "NOTIFY_WORKER": 0,
            "RATELIMIT_ENABLED": False,
        },
        analyzer=gate,  # type: ignore[arg-type]
    )
    large = {"records": [{"text": "您的借呗已逾期" * 500}] * 20}  # 70,000 characters
    first: list[Any] = []
    worker = threading.Thread(
        target=lambda: first.append(app.test_client().post("/v1/check/batch", json=large))
    )
    worker.start()
    try:
        assert gate.entered.wait(30)
        client = app.test_client()
        busy = client.post("/v1/check/batch", json=large)
        assert busy.status_code == 503 and busy.get_json()["error"]["code"] == "busy"
        assert busy.headers["Retry-After"] == "5"
        small = client.post("/v1/check/batch", json={"records": [{"text": "你好"}] * 3})
        assert small.status_code == 200
        assert client.post("/v1/check", json={"text": "你好"}).status_code == 200
    finally:
        gate.release.set()
        worker.join(60)
    assert first[0].status_code == 200 and first[0].get_json()["count"] == 20
    # The slot is free again.
    assert app.test_client().post("/v1/check/batch", json=large).status_code == 200
