"""service/http/web.py: the page, the share target, the installable-app files and the phone
setup."""

from __future__ import annotations

import json
import re
import struct
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest
import segno
from flask import Flask
from flask.testing import FlaskClient

from service.engine.pipeline import Analyzer
from service.engine.schemas import Signal, parse_record
from service.http.result_page import linkify_numbers, snap_to_words
from service.http.web import SECURITY_HEADERS, Segment, evidence_segments, shared_message, tel_href

SCAM = (
    "【支付宝】您的借呗已逾期，请立即缴纳解冻费2000元到个人账户，并把验证码发给客服，"
    "详情 http://jiedong-alipay.cc"
)
CSP = SECURITY_HEADERS["Content-Security-Policy"]


class Page(HTMLParser):
    """A small DOM summary: every element with its attributes, and the text inside chosen ids."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.marks: list[dict[str, Any]] = []
        self.texts: dict[str, str] = {}
        self.script_bodies: list[str] = []
        self._open_ids: list[tuple[str, str]] = []  # (tag, id) of the id'd elements we are inside
        self._mark: dict[str, Any] | None = None
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if attributes.get("id"):
            self._open_ids.append((tag, attributes["id"] or ""))
            self.texts.setdefault(attributes["id"] or "", "")
        if tag == "mark" and any(i == "message" for _, i in self._open_ids):
            self._mark = {"text": "", "class": attributes.get("class")}
        if tag == "a" and self._mark is not None:
            self._mark["explain"] = attributes.get("data-explain")
            self._mark["href"] = attributes.get("href")
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark" and self._mark is not None:
            self.marks.append(self._mark)
            self._mark = None
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open_ids:
            self.texts[element_id] += data
        if self._mark is not None:
            self._mark["text"] += data
        if self._in_script:
            self.script_bodies.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]


def page_of(response: Any) -> Page:
    assert response.mimetype == "text/html"
    return Page(response.get_data(as_text=True))


# --- pure helpers -----------------------------------------------------------------------------


def _signal(start: int, end: int, explanation: str = "") -> Signal:
    return Signal(id="x", source="rule", span=(start, end), explanation=explanation)


@pytest.mark.parametrize(
    ("text", "spans", "expected"),
    [
        ("abcdef", [], [Segment("abcdef")]),
        ("abcdef", [(1, 3, "A")], [Segment("a"), Segment("bc", True, "A"), Segment("def")]),
        # overlapping spans become one mark listing both explanations
        (
            "abcdef",
            [(1, 4, "A"), (2, 5, "B")],
            [Segment("a"), Segment("bcde", True, "A；B"), Segment("f")],
        ),
        # touching spans merge too (no empty gap between two marks)
        ("abcdef", [(0, 2, "A"), (2, 3, "B")], [Segment("abc", True, "A；B"), Segment("def")]),
        # the same explanation twice is listed once
        ("abcdef", [(0, 2, "A"), (1, 3, "A")], [Segment("abc", True, "A"), Segment("def")]),
        # spans beyond the text are clipped; empty or inverted spans ignored
        ("abc", [(2, 9, "A"), (3, 3, "B"), (2, 1, "C")], [Segment("ab"), Segment("c", True, "A")]),
        ("你好世界", [(2, 4, "")], [Segment("你好"), Segment("世界", True, "")]),
    ],
)
def test_evidence_segments_split_the_original_text(
    text: str, spans: list[tuple[int, int, str]], expected: list[Segment]
) -> None:
    segments = evidence_segments(text, [_signal(*span) for span in spans])
    assert segments == expected
    assert "".join(segment.text for segment in segments) == text


def test_signals_without_span_mark_nothing() -> None:
    signal = Signal(id="model", source="model", score=0.9)
    assert evidence_segments("abc", [signal]) == [Segment("abc")]


@pytest.mark.parametrize(
    ("number", "href"),
    [("95188", "tel:95188"), ("400-820-8888", "tel:4008208888"), ("+86 10 9555", "tel:+86109555")],
)
def test_tel_href(number: str, href: str) -> None:
    assert tel_href(number) == href


@pytest.mark.parametrize(
    ("title", "text", "url", "message"),
    [
        ("", "短信正文", "", "短信正文"),  # Android: the body in text, url empty
        ("短信正文", "", "", "短信正文"),  # some apps put it in title only
        ("信息", "短信正文", "", "短信正文"),  # a title beside a text is the app's label
        ("", "短信正文", "http://a.cn/x", "短信正文\nhttp://a.cn/x"),
        ("", "短信 http://a.cn/x 正文", "http://a.cn/x", "短信 http://a.cn/x 正文"),
        ("", "", "http://a.cn/x", "http://a.cn/x"),
    ],
)
def test_shared_message(title: str, text: str, url: str, message: str) -> None:
    assert shared_message(title, text, url) == message


# --- the page ---------------------------------------------------------------------------------


def test_index_renders_a_form_that_needs_no_javascript(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = page_of(response)
    (form,) = page.find("form")
    assert form["method"] == "post" and form["action"] == "/"
    assert page.find("textarea", name="text") and page.find("input", name="sender")
    assert page.find("button", type="submit")
    assert page.find("html", lang="zh-CN")
    assert page.find("link", rel="manifest", href="/manifest.webmanifest")
    assert page.find("meta", name="viewport")


def _verdict_page(client: FlaskClient, text: str, sender: str = "") -> tuple[Any, Page]:
    response = client.post("/", data={"text": text, "sender": sender})
    return response, page_of(response)


def test_form_post_shows_verdict_with_evidence_marked(
    client: FlaskClient, analyzer: Analyzer
) -> None:
    response, page = _verdict_page(client, SCAM, "17123456789")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    verdict = analyzer.check(parse_record({"text": SCAM, "sender": "17123456789"}), "zh")
    assert verdict.category == "scam" and verdict.level == "high"
    assert "高风险" in page.texts["verdict-title"] and "疑似诈骗" in page.texts["verdict-title"]

    # The message is shown exactly as received, and every mark covers text the pipeline flagged.
    assert page.texts["message"] == SCAM
    flagged = [SCAM[s.span[0] : s.span[1]] for s in verdict.signals if s.span]
    assert page.marks, "no evidence marked"
    for mark in page.marks:
        assert any(piece in mark["text"] for piece in flagged)
        # A tap opens the mark's explanation (a dialog); without JavaScript it jumps to the reason.
        assert mark["explain"] and page.texts[mark["explain"]].strip(), "a mark must explain"
        assert mark["href"].startswith("#why-") and mark["href"][1:] in page.texts
    assert any("解冻费" in mark["text"] for mark in page.marks)
    assert any("验证码" in mark["text"] for mark in page.marks)

    # Every explanation is on the page (the technical ones folded under 详细说明).
    reasons = page.texts["reasons"] + page.texts.get("more-reasons", "")
    explanations = [s.explanation for s in verdict.signals if s.explanation and s.source != "model"]
    for explanation in explanations:
        assert explanation in reasons
    for line in verdict.advice:
        assert line in page.texts["advice"]


def test_one_reason_per_piece_of_evidence_in_plain_words(client: FlaskClient) -> None:
    # The sender's number is repeated twice in the text and the link twice: each is one reason.
    text = (
        "【支付宝】您的借呗已逾期，请立即缴纳解冻费2000元到个人账户。或致电 17123456789 / "
        "171-2345-6789，详情 http://jiedong-alipay.cc http://jiedong-alipay.cc"
    )
    _, page = _verdict_page(client, text, "17123456789")
    items = [a for t, a in page.elements if t == "li" and (a.get("id") or "").startswith("why-")]
    about_number = [a["id"] for a in items if "171" in page.texts[a["id"] or ""]]
    about_link = [a["id"] for a in items if "jiedong-alipay.cc" in page.texts[a["id"] or ""]]
    assert len(about_number) == 1 and len(about_link) == 1
    # The number's reason names its place and carrier, in words a phone shows.
    assert "虚拟运营商" in page.texts[about_number[0] or ""]
    # No engineering words where a person reads first (the details are folded below).
    first_screen = page.texts["do-now"] + "".join(
        page.texts[f"{a['id']}-plain"] for a in items if f"{a['id']}-plain" in page.texts
    )
    assert first_screen
    for jargon in ("mvno", "物联网", "号段", "域名", "E.164"):
        assert jargon not in first_screen


def test_official_numbers_are_tel_links(client: FlaskClient) -> None:
    _, page = _verdict_page(client, SCAM)
    assert "支付宝" in page.texts["official"]
    assert page.find("a", href="tel:95188", class_="call")


def test_form_keeps_what_was_typed(client: FlaskClient) -> None:
    _, page = _verdict_page(client, SCAM, "95188")
    assert page.texts["text"] == SCAM
    assert page.find("input", name="sender")[0]["value"] == "95188"


def test_a_legit_reminder_is_not_flagged_high(client: FlaskClient) -> None:
    text = "【支付宝】您的花呗本月账单1280.50元，将于12月10日自动还款，请确保余额充足。"
    _, page = _verdict_page(client, text, "95188")
    assert "高风险" not in page.texts["verdict-title"]


HOSTILE = [
    "<script>alert(1)</script>请缴纳解冻费",
    '"><img src=x onerror=alert(1)>缴纳解冻费',
    "</textarea><script>alert(1)</script>",
    "{{ 7*7 }} {% raw %} &amp; &lt;b&gt;",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_message_text_is_escaped_everywhere(client: FlaskClient, text: str) -> None:
    response, page = _verdict_page(client, text, sender=text[:60])
    assert response.status_code == 200
    # No element came from the message: the only script is the page's own external file.
    assert [a.get("src") for t, a in page.elements if t == "script"] == ["/assets/app.js"]
    assert not page.find("img", src="x")
    assert "".join(page.script_bodies).strip() == ""
    # The text reads back exactly, in the message, the textarea and the sender's value attribute.
    assert page.texts["message"] == text
    assert page.texts["text"] == text
    assert page.find("input", name="sender")[0]["value"] == text[:60]


@pytest.mark.parametrize(
    ("data", "status", "field", "message"),
    [
        ({"text": ""}, 400, "text", "请先粘贴"),
        ({"text": "   \n "}, 400, "text", "请先粘贴"),
        ({}, 400, "text", "请先粘贴"),
        ({"text": "x" * 5001}, 413, "text", "最多 5000 字"),
        ({"text": "你好", "sender": "1" * 65}, 400, "sender", "发件号码太长"),
    ],
)
def test_bad_input_shows_a_friendly_error(
    client: FlaskClient, data: dict[str, str], status: int, field: str, message: str
) -> None:
    response = client.post("/", data=data)
    assert response.status_code == status
    page = page_of(response)
    assert message in page.texts["error"]
    assert page.find("textarea" if field == "text" else "input", name=field)[0]["aria-invalid"]
    assert response.headers["Content-Security-Policy"] == CSP


def test_an_oversized_body_is_a_413_page_not_json(make_app: Callable[..., Flask]) -> None:
    client = make_app(MAX_BODY_BYTES=2000).test_client()
    response = client.post("/", data={"text": "诈" * 3000})
    assert response.status_code == 413
    assert "提交的内容太大" in page_of(response).texts["error"]


def test_rate_limited_page_is_html_and_assets_are_not_limited(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(RATELIMIT_DEFAULT="2/minute").test_client()
    statuses = [client.post("/", data={"text": SCAM}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.post("/", data={"text": SCAM})
    assert "太频繁" in page_of(limited).texts["error"]
    assert limited.headers.get("Retry-After")
    for _ in range(5):
        assert client.get("/assets/app.css").status_code == 200
        assert client.get("/manifest.webmanifest").status_code == 200


# --- share target -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_multipart", [False, True])
def test_share_post_like_android_lands_on_the_result_page(
    client: FlaskClient, as_multipart: bool
) -> None:
    fields = {"title": "", "text": SCAM, "url": ""}
    if as_multipart:
        response = client.post("/share", data=fields, content_type="multipart/form-data")
    else:
        response = client.post("/share", data=fields)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = page_of(response)
    assert page.texts["message"] == SCAM
    assert any("解冻费" in mark["text"] for mark in page.marks)
    # The form below invites adding the sender the share could not carry.
    assert "发件号码" in page.texts["form-title"]


def test_share_with_text_only_in_title(client: FlaskClient) -> None:
    page = page_of(client.post("/share", data={"title": SCAM, "text": "", "url": ""}))
    assert page.texts["message"] == SCAM


def test_an_empty_share_explains_itself(client: FlaskClient) -> None:
    response = client.post("/share", data={"title": "", "text": "", "url": ""})
    assert response.status_code == 400
    assert "请先粘贴" in page_of(response).texts["error"]


def test_share_action_opened_directly_shows_the_form(client: FlaskClient) -> None:
    response = client.get("/share")
    assert response.status_code == 200
    assert page_of(response).find("textarea", name="text")


# --- installable app --------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_manifest_declares_an_installable_share_target(client: FlaskClient) -> None:
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data(as_text=True))
    assert manifest["display"] == "standalone"
    assert manifest["lang"] == "zh-CN"
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert manifest["name"] and manifest["short_name"]
    assert "prefer_related_applications" not in manifest

    share = manifest["share_target"]
    assert share["method"] == "POST"
    assert share["enctype"] == "application/x-www-form-urlencoded"
    assert share["params"] == {"title": "title", "text": "text", "url": "url"}
    shared = client.post(share["action"], data={"title": "", "text": SCAM, "url": ""})
    assert shared.status_code == 200 and page_of(shared).marks

    sizes = set()
    for icon in manifest["icons"]:
        image = client.get(icon["src"])
        assert image.status_code == 200 and image.mimetype == "image/png"
        width, height = _png_size(image.data)
        assert icon["sizes"] == f"{width}x{height}"
        sizes.add(width)
    assert {192, 512} <= sizes


def test_service_worker_is_served_from_the_root_and_caches_only_the_shell(
    client: FlaskClient,
) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    script = response.get_data(as_text=True)
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", script).group(1))
    assert "/" in shell and "/offline" in shell
    # Nothing that carries a person's message is ever cached.
    assert "/share" not in shell
    assert "cache.put" not in script
    for url in shell:
        cached = client.get(url)
        assert cached.status_code == 200, url
        assert cached.headers.get("Cache-Control") != "no-store", url


def test_page_registers_the_worker_from_an_external_script(client: FlaskClient) -> None:
    script = client.get("/assets/app.js")
    assert script.status_code == 200
    assert 'register("/sw.js", { scope: "/" })' in script.get_data(as_text=True)


# --- security headers on everything this module serves -----------------------------------------

PAGES = [
    ("GET", "/", None),
    ("POST", "/", {"text": SCAM}),
    ("POST", "/", {"text": ""}),
    ("GET", "/share", None),
    ("POST", "/share", {"text": SCAM, "title": "", "url": ""}),
    ("GET", "/setup", None),
    ("GET", "/offline", None),
    ("GET", "/manifest.webmanifest", None),
    ("GET", "/sw.js", None),
    ("GET", "/setup/http-shortcuts.json", None),
    ("GET", "/setup/qr.svg?target=setup", None),
    ("GET", "/setup/qr.svg?target=nope", None),
    ("GET", "/assets/app.css", None),
    ("GET", "/assets/app.js", None),
    ("GET", "/assets/icons/icon-512.png", None),
]


@pytest.mark.parametrize(("method", "path", "data"), PAGES)
def test_security_headers_on_every_response(
    client: FlaskClient, method: str, path: str, data: dict[str, str] | None
) -> None:
    response = client.open(path, method=method, data=data)
    assert response.status_code < 500
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/", "/setup", "/offline"])
def test_pages_have_no_inline_script_or_style(client: FlaskClient, path: str) -> None:
    page = page_of(client.get(path))
    assert "".join(page.script_bodies).strip() == ""
    for tag, attributes in page.elements:
        assert "style" not in attributes, tag
        assert not any(name.startswith("on") for name in attributes), tag
        assert tag != "style"
        for name in ("href", "src", "action"):
            assert not (attributes.get(name) or "").lower().startswith("javascript:"), tag


# --- phone setup ------------------------------------------------------------------------------

PUBLIC = "https://dunscan.example.org"


def _import_url(base: str) -> str:
    return f"{base}/setup/http-shortcuts.json"


def _deep_link(base: str) -> str:
    # HTTP Shortcuts DeepLinkViewModel: host "import" with the file's URL in the `url` query.
    return "http-shortcuts://import?url=" + quote(_import_url(base), safe="")


def test_setup_page_links_every_way_in(make_app: Callable[..., Flask]) -> None:
    client = make_app(PUBLIC_URL=PUBLIC).test_client()
    response = client.get("/setup")
    assert response.status_code == 200
    page = page_of(response)
    assert page.find("a", href=_deep_link(PUBLIC))
    assert page.find("a", href="/setup/http-shortcuts.json")
    assert page.find("img", src="/setup/qr.svg?target=http_shortcuts")
    # The short path for a family member comes first: one QR code to the checking page.
    first_image = next(attrs for tag, attrs in page.elements if tag == "img")
    assert first_image["src"] == "/setup/qr.svg?target=home"
    assert "复制" in page.texts["short-path"] and "检查" in page.texts["short-path"]
    # Everything else is folded.
    assert {a.get("id") for t, a in page.elements if t == "details"} >= {
        "install",
        "http-shortcuts",
        "smsforwarder",
    }
    html = response.get_data(as_text=True)
    for expected in ("添加到主屏幕", "Google Play", "HTTPS", "dunscan hooks add", "SmsForwarder"):
        assert expected in html
    assert f"{PUBLIC}/v1/check" in html
    assert "需要 API 密钥" not in html


def test_setup_warns_when_served_over_plain_http(make_app: Callable[..., Flask]) -> None:
    html = make_app(PUBLIC_URL="http://192.168.1.5:8000").test_client().get("/setup").text
    assert "普通 HTTP" in html
    assert "普通 HTTP" not in make_app(PUBLIC_URL=PUBLIC).test_client().get("/setup").text


def test_base_url_falls_back_to_a_listed_request_host(make_app: Callable[..., Flask]) -> None:
    # Only for a host the operator listed: the Host header is the client's to forge
    # (tests/test_hostile.py shows an unlisted one refused).
    client = make_app(PUBLIC_HOSTS="phone.lan").test_client()
    data = client.get("/setup/http-shortcuts.json", base_url="http://phone.lan:8000").json
    assert data["categories"][0]["shortcuts"][0]["url"] == "http://phone.lan:8000/v1/check"


@pytest.mark.parametrize(
    ("target", "payload"),
    [("setup", f"{PUBLIC}/setup"), ("home", f"{PUBLIC}/"), ("http_shortcuts", None)],
)
def test_qr_code_encodes_the_setup_link(
    make_app: Callable[..., Flask], target: str, payload: str | None
) -> None:
    client = make_app(PUBLIC_URL=PUBLIC).test_client()
    response = client.get(f"/setup/qr.svg?target={target}")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert ET.fromstring(response.data).tag.endswith("svg")
    expected = segno.make(payload or _deep_link(PUBLIC), error="m")
    assert response.data == _svg(expected, payload or _deep_link(PUBLIC))


def _svg(qr: segno.QRCode, title: str) -> bytes:
    import io

    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", scale=6, border=2, xmldecl=False, title=title)
    return buffer.getvalue()


def test_qr_code_refuses_arbitrary_targets(client: FlaskClient) -> None:
    response = client.get("/setup/qr.svg?target=https://evil.example")
    assert response.status_code == 404


# --- HTTP Shortcuts import --------------------------------------------------------------------

# Rules from Waboodoo/HTTP-Shortcuts at commit 5e3bc2983f82714ac6eb0253852c0d627b808cad:
# import_export/models/ImportExport{Base,Category,Shortcut,Variable,Header}.kt validate(),
# variables/Variables.kt (keys, placeholders), data/enums/*.kt (accepted values).
HTTP_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"}
BODY_TYPES = {"custom_text", "form_data", "x_www_form_urlencode", "file"}
UI_TYPES = {"toast", "notification", "dialog", "window"}
SUCCESS_OUTPUTS = {"response", "message", "none"}
EXECUTION_TYPES = {"app", "browser", "scripting", "trigger", "mqtt", "wol"}
VARIABLE_TYPES = {
    "constant", "text", "number", "password", "select", "color", "date", "time", "slider",
    "toggle", "increment", "uuid", "clipboard", "timestamp",
}  # fmt: skip
VARIABLE_KEY = re.compile(r"[A-Za-z0-9_]{1,30}")
PLACEHOLDER = re.compile(r"\{\{([0-9a-fA-F-]{36}|[0-9]+)\}\}")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _is_id(value: Any) -> bool:
    if isinstance(value, str) and value.isdigit():
        return True
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def validate_http_shortcuts_import(data: dict[str, Any]) -> None:
    """What the app's importer checks before it accepts a file (raises AssertionError)."""
    assert isinstance(data["version"], int) and data["version"] > 0
    assert "categories" in data  # ImportMigrator: "Import data doesn't have any categories"
    variables = data.get("variables") or []
    variable_ids = [v["id"] for v in variables]
    assert len(set(variable_ids)) == len(variable_ids)
    assert len({v["key"] for v in variables}) == len(variables)
    for variable in variables:
        assert _is_id(variable["id"])
        assert VARIABLE_KEY.fullmatch(variable["key"])
        assert variable.get("type", "constant") in VARIABLE_TYPES
    shortcut_ids = []
    for category in data["categories"]:
        assert _is_id(category["id"]) and category["name"].strip()
        for shortcut in category["shortcuts"]:
            shortcut_ids.append(shortcut["id"])
            assert _is_id(shortcut["id"]) and shortcut["name"].strip()
            assert shortcut.get("executionType", "app") in EXECUTION_TYPES
            assert shortcut["method"] in HTTP_METHODS
            assert shortcut.get("requestBodyType", "custom_text") in BODY_TYPES
            handling = shortcut["responseHandling"]
            assert handling.get("uiType", "window") in UI_TYPES
            assert handling.get("successOutput", "response") in SUCCESS_OUTPUTS
            for header in shortcut.get("headers", []):
                assert HEADER_NAME.fullmatch(header["key"])
            used = PLACEHOLDER.findall(
                shortcut["url"] + shortcut.get("bodyContent", "")
                + "".join(h["value"] for h in shortcut.get("headers", []))
            )  # fmt: skip
            assert set(used) <= set(variable_ids), "placeholder for an undeclared variable"
    assert len(set(shortcut_ids)) == len(shortcut_ids)


def _only_shortcut(data: dict[str, Any]) -> dict[str, Any]:
    (category,) = data["categories"]
    (shortcut,) = category["shortcuts"]
    return shortcut


def test_http_shortcuts_import_is_valid_for_the_app(make_app: Callable[..., Flask]) -> None:
    client = make_app(PUBLIC_URL=PUBLIC).test_client()
    response = client.get("/setup/http-shortcuts.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    validate_http_shortcuts_import(data)
    assert data["version"] == 90 and data["compatibilityVersion"] == 90

    shortcut = _only_shortcut(data)
    assert shortcut["name"] == "dunscan 查诈骗"
    assert shortcut["method"] == "POST"
    assert shortcut["url"] == f"{PUBLIC}/v1/check"
    assert {"key": "Accept", "value": "text/plain"} in shortcut["headers"]
    assert shortcut["responseHandling"]["uiType"] == "dialog"
    assert shortcut["responseHandling"]["successOutput"] == "response"

    # The shortcut is a share target: one of its placeholders is a variable that receives text.
    (shared,) = [v for v in data["variables"] if v.get("isShareText")]
    assert f"{{{{{shared['id']}}}}}" in shortcut["bodyContent"]
    assert shared["jsonEncode"] is True


def _run_shortcut(client: FlaskClient, data: dict[str, Any], values: dict[str, str]) -> Any:
    """Do what HTTP Shortcuts does on execution: fill placeholders (JSON-escaping values of
    jsonEncode variables), send the request, hand back the response it would show."""
    shortcut = _only_shortcut(data)
    by_id = {v["id"]: v for v in data["variables"]}

    def fill(template: str) -> str:
        def value(match: re.Match[str]) -> str:
            variable = by_id[match.group(1)]
            raw = values.get(variable["key"], variable.get("value") or "")
            return json.dumps(raw, ensure_ascii=False)[1:-1] if variable.get("jsonEncode") else raw

        return PLACEHOLDER.sub(value, template)

    headers = {h["key"]: fill(h["value"]) for h in shortcut["headers"]}
    path = shortcut["url"].removeprefix(PUBLIC)
    return client.open(
        path,
        method=shortcut["method"],
        data=fill(shortcut["bodyContent"]).encode(),
        content_type=shortcut["contentType"],
        headers=headers,
    )


def test_the_imported_shortcut_gets_a_readable_verdict(make_app: Callable[..., Flask]) -> None:
    client = make_app(PUBLIC_URL=PUBLIC).test_client()
    data = client.get("/setup/http-shortcuts.json").json
    # A shared SMS with quotes, a backslash and line breaks must survive the JSON body.
    shared = SCAM + '\n"客服"说：\\ 立即处理'
    response = _run_shortcut(client, data, {"dunscan_message": shared})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "高风险" in response.text and "疑似诈骗" in response.text


def test_http_shortcuts_import_with_api_keys(make_app: Callable[..., Flask]) -> None:
    client = make_app(PUBLIC_URL=PUBLIC, API_KEYS="k-123").test_client()
    data = client.get("/setup/http-shortcuts.json").json
    validate_http_shortcuts_import(data)
    assert "k-123" not in json.dumps(data)  # a public download never carries a key
    (key_variable,) = [v for v in data["variables"] if v["key"] == "dunscan_api_key"]
    assert key_variable["type"] == "constant" and key_variable["value"] == ""
    assert _run_shortcut(client, data, {"dunscan_message": SCAM}).status_code == 401
    with_key = _run_shortcut(client, data, {"dunscan_message": SCAM, "dunscan_api_key": "k-123"})
    assert with_key.status_code == 200 and "疑似诈骗" in with_key.text
    assert "需要 API 密钥" in client.get("/setup").text


def test_foreign_text_shows_what_was_checked(client: FlaskClient) -> None:
    text = "Your PayPal account is limited. Verify at http://paypa1-secure.com/login today."
    response, page = _verdict_page(client, text)
    assert response.status_code == 200
    assert "中文" in page.texts["coverage"]
    assert "疑似诈骗" in page.texts["verdict-title"]


def test_a_chinese_message_has_no_coverage_note(client: FlaskClient) -> None:
    _, page = _verdict_page(client, SCAM)
    assert "coverage" not in page.texts


def test_a_known_script_links_to_where_it_was_published(
    client: FlaskClient, analyzer: Analyzer
) -> None:
    from model import data

    scripts = [
        e.record.text
        for e in data.load_real_quoted()
        if e.label == "scam"
        and str(e.meta.get("source", "")).startswith("http")
        and len(e.record.text) > 30
    ]
    for text in scripts:
        verdict = analyzer.check(parse_record({"text": text}))
        signal = next((s for s in verdict.signals if s.id == "known_script"), None)
        if signal is None:
            continue
        _, page = _verdict_page(client, text)
        assert page.find("a", href=signal.reference, class_="source")
        assert "诈骗话术高度相似" in page.texts["reasons"]
        return
    pytest.fail("no published script matched its own text")


# --- the first screen: plain words, one thing to do, marks told apart ---------------------------


@pytest.mark.parametrize(
    ("text", "start", "end", "expected"),
    [
        # A model phrase is a character n-gram: "员微信" cuts 专员 in two.
        ("请添加专员微信处理", 3, 6, "请添加专员微信处理"),
        ("注销校园贷账户", 3, 7, "注销校园贷账户"),
        ("热线 HOTLINE 999", 5, 7, "HOTLINE"),
        # Edges already at punctuation, a space or a script change stay where they are.
        ("您已逾期，请缴纳解冻费2000元", 6, 11, "请缴纳解冻费"),
        ("请缴纳解冻费2000元", 1, 6, "请缴纳解冻费"),
        ("验证码：123456", 0, 3, "验证码"),
        # A run longer than the limit is a clause: the edge stays rather than swallowing it.
        ("一二三四五六七八九十甲乙丙丁", 9, 11, "十甲乙丙丁"),
    ],
)
def test_marks_never_cut_a_word(text: str, start: int, end: int, expected: str) -> None:
    new_start, new_end = snap_to_words(text, start, end)
    assert text[new_start:new_end] == expected
    assert new_start <= start and new_end >= end


@pytest.mark.parametrize(
    ("text", "span", "expected"),
    [
        ("您好，请添加专员微信处理，逾期将上报征信", (6, 9), "请添加专员微信处理"),
        # The model's n-grams have arbitrary edges: they grow to their clause, however long.
        (
            "再把你欠债的事发给你所有亲戚朋友和同事。",
            (7, 11),
            "再把你欠债的事发给你所有亲戚朋友和同事",
        ),
    ],
)
def test_a_model_phrase_mark_is_snapped_on_the_page(
    text: str, span: tuple[int, int], expected: str
) -> None:
    signals = [Signal(id="model_phrase", source="model", span=span, explanation="E")]
    marked = [s.text for s in evidence_segments(text, signals, snap=True) if s.marked]
    assert marked == [expected]


def test_a_rule_mark_keeps_its_edges_inside_a_long_clause() -> None:
    # "上门找你" starts 8 characters into its run: a rule's edge there is a word boundary.
    text = "今天不还款明天就上门找你，等着"
    signals = [Signal(id="abusive_home_visit", source="rule", span=(8, 12), explanation="E")]
    marked = [s.text for s in evidence_segments(text, signals, snap=True) if s.marked]
    assert marked == ["上门找你"]


@pytest.mark.parametrize(
    ("line", "links"),
    [
        (
            "如已转账或泄露信息，请立即拨打110报警，可拨打96110咨询；将短信转发至12321举报",
            ["tel:110", "tel:96110", "tel:12321"],
        ),
        ("请拨打官方电话95188或400-820-8888核实", ["tel:95188", "tel:4008208888"]),
        ("本期账单1,280.00元，11月25日到期", []),  # an amount or a date is not a number to call
    ],
)
def test_every_number_in_the_advice_is_tappable(line: str, links: list[str]) -> None:
    pieces = linkify_numbers(line)
    assert "".join(piece.text for piece in pieces) == line
    assert [piece.href for piece in pieces if piece.href] == links


def test_scam_first_screen_says_what_to_do_with_a_call_button(client: FlaskClient) -> None:
    _, page = _verdict_page(client, SCAM, "17123456789")
    assert "很可能是诈骗" in page.texts["verdict-title"]
    assert "不要付钱" in page.texts["do-now"]
    (call,) = page.find("a", id="call-now")
    assert call["href"] == "tel:95188"
    assert "支付宝" in page.texts["call-now"]
    for number in ("110", "96110", "12321", "95188"):
        assert page.find("a", href=f"tel:{number}"), number
    # Only suspicious marks here, and the legend says so in words, not only colour.
    assert {mark["class"] for mark in page.marks} == {"mark-suspicious"}
    assert "可疑" in page.texts["legend"] and "正规迹象" not in page.texts["legend"]


def test_without_a_brand_the_button_calls_the_anti_fraud_line(client: FlaskClient) -> None:
    _, page = _verdict_page(client, "您的账户涉嫌洗钱，请立即缴纳解冻费到安全账户，并提供验证码")
    (call,) = page.find("a", id="call-now")
    assert call["href"] == "tel:96110"


def test_a_genuine_bill_marks_reassuring_words_as_reassuring(client: FlaskClient) -> None:
    text = "【支付宝】您的花呗本期账单1,280.00元将于11月25日到期，请通过支付宝App按时还款。"
    _, page = _verdict_page(client, text, "95188")
    assert "正规" in page.texts["verdict-title"]
    assert page.marks and {mark["class"] for mark in page.marks} == {"mark-reassuring"}
    assert "正规迹象" in page.texts["legend"] and "可疑" not in page.texts["legend"]
    assert "支付宝/花呗官方号码" in page.texts["numbers"]


def test_abusive_collection_gets_its_complaint_channels(client: FlaskClient) -> None:
    text = (
        "你再不还钱，我们就打电话给你通讯录里所有人，还要去你单位找你领导，让你全家都知道你是老赖！"
    )
    _, page = _verdict_page(client, text, "13800138000")
    assert "暴力催收" in page.texts["verdict-title"]
    (call,) = page.find("a", id="call-now")
    assert call["href"] == "tel:12378"
    assert page.find("a", href="tel:12363") and page.find("a", href="tel:110")
    assert "北京市 · 中国移动" in page.texts["numbers"]


def test_large_text_is_remembered(client: FlaskClient) -> None:
    assert not page_of(client.get("/")).find("html", class_="large-text")
    response = client.get("/text-size?size=large")
    assert response.status_code == 303
    assert "dunscan_text=large" in response.headers["Set-Cookie"]
    assert page_of(client.get("/")).find("html", class_="large-text")
    assert page_of(client.post("/", data={"text": SCAM})).find("html", class_="large-text")
    client.get("/text-size?size=normal")
    assert not page_of(client.get("/")).find("html", class_="large-text")


def test_model_phrases_in_one_clause_are_one_reason(
    client: FlaskClient, analyzer: Analyzer
) -> None:
    # Which n-grams the model weighs changes with each retrain (model 5023d5: 影响 and 的征信,
    # both in 不处理将影响您的征信; model dd1b9c: 不处理 and 您的个人征信 in the second message);
    # what this test needs is a message with more than one phrase in some clause.
    candidates = [
        "您好，您在我平台的借款已逾期，请今天内处理，不处理将影响您的征信，详询 17123456789",
        "您在我平台的借款已逾期三天，今天不处理将影响您的个人征信，详询 17123456789",
    ]
    for text in candidates:
        verdict = analyzer.check(parse_record({"text": text, "sender": "17123456789"}))
        phrase_starts = [
            s.span[0] for s in verdict.signals if s.id == "model_phrase" and s.span is not None
        ]
        clauses = [m.span() for m in re.finditer(r"[^，]+", text)]
        clauses_of_phrases = {next(c for c in clauses if c[0] <= at < c[1]) for at in phrase_starts}
        if len(clauses_of_phrases) < len(phrase_starts):
            break
    assert len(clauses_of_phrases) < len(phrase_starts)
    _, page = _verdict_page(client, text, "17123456789")
    quoted = [
        page.texts[a["id"] or ""]
        for t, a in page.elements
        if t == "li" and (a.get("id") or "").startswith("why-")
    ]
    for start, end in clauses_of_phrases:
        assert sum(text[start:end] in reason for reason in quoted) == 1, text[start:end]


def test_the_result_view_holds_on_real_messages(analyzer: Analyzer) -> None:
    """Real messages of every kind (published scams, collectors' letters, genuine notices), each
    with a virtual-operator sender: the view never fails, keeps the message intact, gives every
    reason words, and lists each number once."""
    from model import data
    from service.http.result_page import result_view

    examples = data.load_real_quoted()[:150] + data.load_real()[:150]
    assert len(examples) >= 200
    for example in examples:
        text = example.record.text or ""
        if not text.strip():
            continue
        verdict = analyzer.check(parse_record({"text": text, "sender": "+86 171 2345 6789"}))
        view = result_view(text, verdict)
        assert "".join(segment.text for segment in view["segments"]) == text
        reasons = view["reasons"] + view["more_reasons"]
        assert all(reason.plain for reason in reasons)
        assert len({r.id for r in reasons}) == len(reasons)
        listed = [row["number"] for row in view["numbers"]]
        assert len(listed) == len(set(listed))
        if verdict.level != "low":
            assert reasons, "a warning must come with a reason"


def test_the_phone_summary_names_each_piece_of_evidence_once(analyzer: Analyzer) -> None:
    from service.engine.summary import reasons

    text = (
        "【支付宝】您的借呗已逾期，或致电 17123456789 / 171-2345-6789，"
        "详情 http://jiedong-alipay.cc http://jiedong-alipay.cc 缴纳解冻费"
    )
    verdict = analyzer.check(parse_record({"text": text, "sender": "17123456789"}))
    lines = reasons(verdict)
    assert len(lines) == 3
    assert sum("171" in line for line in lines) == 1
    assert sum("alipay.cc" in line for line in lines) == 1
