"""The SmsForwarder webhook, fed requests built the way the app builds them.

The phone side is re-implemented here from SmsForwarder's source (WebhookUtils.kt @ ca5d9945,
MsgInfo.kt @ 43278562) and OkHttp's encoders, independently of service/phones/smsforwarder.py, so a
wrong assumption in the service cannot hide behind the same wrong assumption in the test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder

from service.app import create_app
from service.engine.pipeline import Analyzer
from service.engine.schemas import CallRecord, SmsRecord
from service.phones.smsforwarder import (
    parse_call_text,
    split_default_content,
    to_record,
    verify_sign,
)
from service.phones.store import HookInfo, Outbox, create_hook, store_for

SECRET = "SEC-2f9c1e"
SCAM_SENDER = "+86 171 2345 6789"
SCAM_TEXT = (
    "【支付宝】您的借呗账户异常已被冻结，需缴纳解冻费2000元，请加微信kf8888处理，"
    "否则影响征信。退订回T"
)
LEGIT_SENDER = "95188"
LEGIT_TEXT = "【支付宝】您的花呗本期账单1234.56元将于10日到期，请通过支付宝App按时还款。"

# --- the phone side ------------------------------------------------------------------------

# OkHttp HttpUrl.FORM_ENCODE_SET and QUERY_COMPONENT_ENCODE_SET; '%' and '+' are always encoded
# (alreadyEncoded=false, plusIsSpace=true), as are controls and non-ASCII (as UTF-8).
OKHTTP_FORM_ENCODE_SET = " \"':;<=>@[]^`{}|/\\?#&!$(),~"
OKHTTP_QUERY_COMPONENT_ENCODE_SET = " !\"#$&'(),/:;<=>?@[]\\^`{|}~"


def okhttp_encode(value: str, encode_set: str) -> str:
    out = []
    for char in value:
        if 0x20 < ord(char) < 0x7F and char not in encode_set and char not in "%+":
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode())
    return "".join(out)


def java_url_encode(value: str) -> str:
    """java.net.URLEncoder.encode(value, "UTF-8"): keeps a-zA-Z0-9 . - * _ and space → '+'."""
    return quote_plus(value, safe="*")


def app_sign(secret: str, timestamp: str) -> str:
    """WebhookUtils.kt: URLEncoder.encode(Base64(HmacSHA256(secret, "$timestamp\\n$secret")))."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return java_url_encode(base64.b64encode(mac).decode())


def now_ms() -> str:
    return str(int(time.time() * 1000))


def default_content(sender: str, sms: str, sim: str = "SIM1_中国移动_138", device: str = "") -> str:
    """MsgInfo.getContentForSend with no custom template, then .trim()."""
    block = f"{sender}\n{sms}\n{sim}\nSubId：1\n2026-11-20 09:30:00\n{device}"
    return block.strip()


def default_params(
    sender: str, sms: str, secret: str | None, timestamp: str
) -> list[tuple[str, str]]:
    """`from=[from]&content=[content]&timestamp=[timestamp]` (+ `&sign=[sign]`), values raw."""
    params = [("from", sender), ("content", default_content(sender, sms)), ("timestamp", timestamp)]
    if secret:
        params.append(("sign", app_sign(secret, timestamp)))
    return params


def retrofit_form_body(params: list[tuple[str, str]]) -> bytes:
    """What XHttp2's @FormUrlEncoded @FieldMap POST puts on the wire (OkHttp FormBody)."""
    return "&".join(
        f"{okhttp_encode(k, OKHTTP_FORM_ENCODE_SET)}={okhttp_encode(v, OKHTTP_FORM_ENCODE_SET)}"
        for k, v in params
    ).encode()


def retrofit_query(params: list[tuple[str, str]]) -> str:
    """What XHttp2's PUT/PATCH @QueryMap appends to the URL."""
    return "&".join(
        f"{okhttp_encode(k, OKHTTP_QUERY_COMPONENT_ENCODE_SET)}="
        f"{okhttp_encode(v, OKHTTP_QUERY_COMPONENT_ENCODE_SET)}"
        for k, v in params
    )


def gson_escape(value: str) -> str:
    """escapeJson in WebhookUtils.kt: Gson().toJson(value) without the surrounding quotes."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


JSON_TEMPLATE = (
    '{"from":"[from]","org_content":"[org_content]","receive_time":"[receive_time]",'
    '"timestamp":"[timestamp]","sign":"[sign]"}'
)


def json_template_body(sender: str, sms: str, secret: str | None, timestamp: str) -> bytes:
    sign = app_sign(secret, timestamp) if secret else ""
    body = (
        JSON_TEMPLATE.replace("[from]", sender)  # [from] is not escaped by the app
        .replace("[org_content]", gson_escape(sms))
        .replace("[receive_time]", "2026-11-20 09:30:00")
        .replace("[timestamp]", timestamp)
        .replace("[sign]", sign)
    )
    return body.encode()


def get_template_query(sender: str, sms: str, secret: str, timestamp: str) -> str:
    """GET with webParams: tags URL-encoded, newlines as %0A, [sign] URL-encoded a second time."""
    params = "from=[from]&org_content=[org_content]&timestamp=[timestamp]&sign=[sign]"
    return (
        params.replace("[from]", java_url_encode(sender))
        .replace("[org_content]", java_url_encode(sms))
        .replace("\n", "%0A")
        .replace("[timestamp]", timestamp)
        .replace("[sign]", java_url_encode(app_sign(secret, timestamp)))
    )


# --- fixtures -------------------------------------------------------------------------------


class CountingAnalyzer:
    """The real analyzer, counting how often it is asked: a duplicate must not be scored."""

    def __init__(self, real: Analyzer) -> None:
        self.real = real
        self.calls = 0

    def check(self, record: SmsRecord | CallRecord, lang: str = "zh") -> Any:
        self.calls += 1
        return self.real.check(record, lang=lang)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def counting(analyzer: Analyzer) -> CountingAnalyzer:
    return CountingAnalyzer(analyzer)


@pytest.fixture
def app(tmp_path: Any, counting: CountingAnalyzer) -> Flask:
    config = {
        "TESTING": True,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hooks.sqlite3'}",
        "RATELIMIT_ENABLED": False,
        "NOTIFY_WORKER": 0,  # delivery is tested in test_notify.py
    }
    return create_app(config, analyzer=counting)  # type: ignore[arg-type]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def signed_hook(app: Flask) -> HookInfo:
    return create_hook(
        "mum", secret=SECRET, notify_url="ntfy+http://127.0.0.1:9/t", store=store_for(app)
    )


@pytest.fixture
def open_hook(app: Flask) -> HookInfo:
    return create_hook("dad", store=store_for(app))


def outbox_rows(app: Flask) -> int:
    with store_for(app).session() as session:
        return int(session.scalar(select(func.count()).select_from(Outbox)) or 0)


def post_form(client: FlaskClient, hook: HookInfo, params: list[tuple[str, str]]) -> Any:
    return client.post(
        hook.path,
        data=retrofit_form_body(params),
        content_type="application/x-www-form-urlencoded",
    )


# --- accepted requests, one per mode the app has ---------------------------------------------


def test_default_form_post_byte_for_byte_gets_a_verdict_and_a_queued_push(
    app: Flask, client: FlaskClient, signed_hook: HookInfo, counting: CountingAnalyzer
) -> None:
    params = default_params(SCAM_SENDER, SCAM_TEXT, SECRET, now_ms())
    body = retrofit_form_body(params)
    assert b"%25" in body  # the already URL-encoded sign was encoded again, as on the wire
    response = post_form(client, signed_hook, params)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["accepted"] is True and answer["duplicate"] is False
    assert (answer["kind"], answer["category"], answer["level"]) == ("sms", "scam", "high")
    assert answer["notified"] is True
    assert "解冻费" in answer["summary"]
    assert counting.calls == 1
    assert outbox_rows(app) == 1


def test_json_template_gets_a_verdict(client: FlaskClient, signed_hook: HookInfo) -> None:
    response = client.post(
        signed_hook.path,
        data=json_template_body(SCAM_SENDER, SCAM_TEXT, SECRET, now_ms()),
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["category"] == "scam"


def test_get_template_gets_a_verdict(client: FlaskClient, signed_hook: HookInfo) -> None:
    query = get_template_query(SCAM_SENDER, SCAM_TEXT, SECRET, now_ms())
    response = client.get(f"{signed_hook.path}?{query}")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["level"] == "high"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_put_and_patch_send_the_default_fields_as_a_query(
    client: FlaskClient, signed_hook: HookInfo, method: str
) -> None:
    query = retrofit_query(default_params(SCAM_SENDER, SCAM_TEXT, SECRET, now_ms()))
    response = client.open(f"{signed_hook.path}?{query}", method=method)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["category"] == "scam"


def test_default_get_mode_with_the_fields_glued_to_the_path(
    client: FlaskClient, signed_hook: HookInfo
) -> None:
    # WebhookUtils: requestUrl += "&content=" + URLEncoder(content) (+ &timestamp & &sign); the
    # "from" it builds is appended to a copy that is never sent.
    timestamp = now_ms()
    url = (
        f"{signed_hook.path}&content={java_url_encode(default_content(SCAM_SENDER, SCAM_TEXT))}"
        f"&timestamp={timestamp}&sign={app_sign(SECRET, timestamp)}"
    )
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["category"] == "scam"


def test_a_hook_without_secret_needs_no_signature(client: FlaskClient, open_hook: HookInfo) -> None:
    response = post_form(
        client, open_hook, default_params(LEGIT_SENDER, LEGIT_TEXT, None, now_ms())
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["level"] != "high"
    assert response.get_json()["notified"] is False


# --- refusals ---------------------------------------------------------------------------------


def test_wrong_secret_is_refused_and_not_scored(
    client: FlaskClient, signed_hook: HookInfo, counting: CountingAnalyzer
) -> None:
    response = post_form(
        client, signed_hook, default_params(SCAM_SENDER, SCAM_TEXT, "other", now_ms())
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["field"] == "sign"
    assert counting.calls == 0


def test_stale_timestamp_is_refused(client: FlaskClient, signed_hook: HookInfo) -> None:
    two_hours_ago = str(int((time.time() - 7200) * 1000))
    response = post_form(
        client, signed_hook, default_params(SCAM_SENDER, SCAM_TEXT, SECRET, two_hours_ago)
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["field"] == "timestamp"


def test_the_skew_window_is_configurable(tmp_path: Any, analyzer: Analyzer) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'skew.sqlite3'}",
            "RATELIMIT_ENABLED": False,
            "NOTIFY_WORKER": 0,
            "HOOK_MAX_SKEW_S": 60,
        },
        analyzer=analyzer,
    )
    hook = create_hook("skew", secret=SECRET, store=store_for(app))
    two_minutes_ago = str(int((time.time() - 120) * 1000))
    params = default_params(SCAM_SENDER, SCAM_TEXT, SECRET, two_minutes_ago)
    assert post_form(app.test_client(), hook, params).status_code == 401


def test_unsigned_request_to_a_signed_hook_is_refused(
    client: FlaskClient, signed_hook: HookInfo, counting: CountingAnalyzer
) -> None:
    response = post_form(
        client, signed_hook, default_params(SCAM_SENDER, SCAM_TEXT, None, now_ms())
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert counting.calls == 0


def test_a_replayed_signature_with_another_body_is_refused(
    app: Flask, client: FlaskClient, signed_hook: HookInfo, counting: CountingAnalyzer
) -> None:
    timestamp = now_ms()
    first = post_form(
        client, signed_hook, default_params(SCAM_SENDER, SCAM_TEXT, SECRET, timestamp)
    )
    assert first.status_code == 200
    replay = default_params("10086", "另一条内容，借用同一个签名", SECRET, timestamp)
    response = post_form(client, signed_hook, replay)
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "this signature was already used"
    assert counting.calls == 1


def test_the_phones_own_resend_is_a_duplicate_not_scored_again(
    app: Flask, client: FlaskClient, signed_hook: HookInfo, counting: CountingAnalyzer
) -> None:
    # XHttp2 retries the very same request (same timestamp and sign) after a timeout.
    params = default_params(SCAM_SENDER, SCAM_TEXT, SECRET, now_ms())
    assert post_form(client, signed_hook, params).status_code == 200
    again = post_form(client, signed_hook, params)
    assert again.status_code == 200
    assert again.get_json() == {"accepted": True, "duplicate": True}
    assert counting.calls == 1
    assert outbox_rows(app) == 1


def test_the_same_sms_forwarded_again_later_is_a_duplicate(
    app: Flask, client: FlaskClient, signed_hook: HookInfo, counting: CountingAnalyzer
) -> None:
    first = default_params(SCAM_SENDER, SCAM_TEXT, SECRET, str(int(time.time() * 1000) - 5000))
    assert post_form(client, signed_hook, first).status_code == 200
    second = post_form(
        client, signed_hook, default_params(SCAM_SENDER, SCAM_TEXT, SECRET, now_ms())
    )
    assert second.status_code == 200
    assert second.get_json()["duplicate"] is True
    assert counting.calls == 1
    assert outbox_rows(app) == 1


@pytest.mark.parametrize("token", ["x" * 32, "not-a-token", "a.b", "%E4%BD%A0"])
def test_unknown_token_is_404_json(client: FlaskClient, signed_hook: HookInfo, token: str) -> None:
    response = client.post(f"/hooks/sf/{token}", data={"from": "1", "content": "x"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"from": "10086"}, "org_content"),
        ({"from": "10086", "org_content": "   "}, "org_content"),
        ({"org_content": "通讯录名：未知号码\n通话类型：未接来电"}, "from"),
    ],
)
def test_a_request_without_a_usable_record_is_422(
    client: FlaskClient, open_hook: HookInfo, fields: dict[str, str], field: str
) -> None:
    response = client.post(open_hook.path, json=fields)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field


def test_a_json_body_that_is_not_an_object_is_400(client: FlaskClient, open_hook: HookInfo) -> None:
    response = client.post(open_hook.path, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"


def test_logs_name_the_hook_id_but_never_the_token_text_or_number(
    client: FlaskClient, signed_hook: HookInfo, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="service.phones.webhooks"):
        post_form(client, signed_hook, default_params(SCAM_SENDER, SCAM_TEXT, SECRET, now_ms()))
    records = [r for r in caplog.records if r.name == "service.phones.webhooks"]
    assert records and all(getattr(r, "hook_id", None) == signed_hook.id for r in records)
    dumped = " ".join(json.dumps(vars(r), ensure_ascii=False, default=str) for r in records)
    assert signed_hook.token and signed_hook.token not in dumped
    assert "解冻费" not in dumped and "17123456789" not in dumped.replace(" ", "")


def test_the_path_the_access_log_reads_no_longer_holds_the_token(
    app: Flask, signed_hook: HookInfo
) -> None:
    # gunicorn's access log reads PATH_INFO from the request's environ after the response.
    environ = EnvironBuilder(
        path=signed_hook.path, method="POST", data={"from": "1", "org_content": "x"}
    ).get_environ()
    response_status: list[str] = []
    app.wsgi_app(environ, lambda status, headers: response_status.append(status))
    assert response_status and response_status[0].startswith("401")
    assert signed_hook.token
    for key in ("PATH_INFO", "RAW_URI", "REQUEST_URI"):
        assert signed_hook.token not in environ[key]
        assert environ[key].startswith("/hooks/sf/")


# --- calls --------------------------------------------------------------------------------------


def test_a_call_record_text_becomes_a_call_verdict(
    client: FlaskClient, signed_hook: HookInfo
) -> None:
    call_text = (
        "通讯录名：未知号码\n通话时间：2026-11-20 09:30:00\n通话时长：42s\n通话类型：来电挂机"
    )
    response = post_form(
        client, signed_hook, default_params(SCAM_SENDER, call_text, SECRET, now_ms())
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["kind"] == "call"


@pytest.mark.parametrize(
    ("text", "direction", "duration"),
    [
        (
            "通讯录名：未知号码\n通话时间：2026-11-20 09:30:00\n通话时长：42s\n通话类型：来电挂机",
            "incoming",
            42,
        ),
        (
            "通讯录名：张三\n被呼号码：10086\n通话时长：7s\n通话类型：去电挂机\n呼叫转移：是",
            "outgoing",
            7,
        ),
        (
            "通讯录名：未知号码\n通话时间：2026-11-20 09:30:00\n响铃时长：5s\n通话类型：未接来电",
            "missed",
            0,
        ),
        ("通讯录名：未知号码\n通话类型：来电提醒", "incoming", None),
        ("通訊錄名：未知號碼\n通話時長：13s\n通話類型：來電掛機", "incoming", 13),
        (
            "Contact: Unknown\nCall date: 2026-11-20 09:30:00\nCall duration: 65s\n"
            "Call type: Outgoing Ended",
            "outgoing",
            65,
        ),
    ],
)
def test_call_texts_in_each_app_language(text: str, direction: str, duration: int | None) -> None:
    record = to_record({"from": "+8617123456789", "org_content": text})
    assert isinstance(record, CallRecord)
    assert (record.direction, record.duration_s, record.sender) == (
        direction,
        duration,
        "+8617123456789",
    )


def test_an_sms_is_not_mistaken_for_a_call() -> None:
    assert parse_call_text("您的通话时长套餐已用完，请充值") is None
    record = to_record({"from": "10086", "org_content": "您本月通话时长：120分钟"})
    assert isinstance(record, SmsRecord)


# --- the default [content] block -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "sender", "body"),
    [
        # everything present
        (
            "10690000\n第一行\n第二行\nSIM1_移动_138\nSubId：1\n2026-11-20 09:30:00\nMi 13",
            "10690000",
            "第一行\n第二行",
        ),
        # empty SIM label and no device name: the block is trimmed at the end
        ("95188\n您的账单已出\n\nSubId：2\n2026-11-20 09:30:00", "95188", "您的账单已出"),
        # unknown slot: SubId 0, and a body that itself ends with a SubId-looking line
        ("1065\nSubId：9 是假的\n\nSubId：0\n2026-11-20 09:30:00", "1065", "SubId：9 是假的"),
        # a custom template: taken whole, minus the sender line
        ("95188\n自定义模板正文", "95188", "自定义模板正文"),
    ],
)
def test_the_body_is_cut_out_of_the_default_content_block(
    content: str, sender: str, body: str
) -> None:
    block = split_default_content(content, None if "\n\n" in content else sender)
    assert (block.sender, block.body) == (sender, body)


@pytest.mark.parametrize("encoding", ["raw", "once", "twice"])
def test_the_sign_is_accepted_in_every_encoding_the_modes_produce(encoding: str) -> None:
    timestamp = now_ms()
    mac = hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    b64 = base64.b64encode(mac).decode()
    value = {"raw": b64, "once": quote(b64, safe=""), "twice": quote(quote(b64, safe=""), safe="")}
    assert verify_sign(SECRET, timestamp, value[encoding])
    assert not verify_sign(SECRET + "x", timestamp, value[encoding])
    assert not verify_sign(SECRET, str(int(timestamp) + 1), value[encoding])
