"""The web page in a real browser: Debian's headless Chromium, driven by Playwright, against the
real app served over HTTP on a loopback port. Screenshots go to test-output/ (gitignored)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from service import create_app
from service.engine.pipeline import Analyzer
from service.engine.schemas import parse_record

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (/usr/bin/chromium); .ci/run installs it "
        "(apt-get install chromium)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
# Small and common Android screens (CSS pixels): where the first screen must hold the answer.
SCREENS = [{"width": 360, "height": 800}, {"width": 412, "height": 915}]
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
SCAM = "【支付宝】您的借呗已逾期，请立即缴纳解冻费2000元到个人账户，并把验证码发给客服。"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>请缴纳解冻费"


@pytest.fixture(scope="module")
def server_url(analyzer: Analyzer, database_url: str) -> Iterator[str]:
    app = create_app(
        {"TESTING": True, "DATABASE_URL": database_url, "RATELIMIT_ENABLED": False},
        analyzer=analyzer,
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A phone-sized page that records dialogs and CSP violations reported on the console."""

    def __init__(
        self, browser: Browser, javascript: bool = True, viewport: dict[str, int] | None = None
    ) -> None:
        self.context = browser.new_context(
            viewport=viewport or PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            java_script_enabled=javascript,
        )
        self.page: Page = self.context.new_page()
        self.dialogs: list[str] = []
        self.csp_violations: list[str] = []
        self.page.on("dialog", self._on_dialog)
        self.page.on("console", self._on_console)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _on_console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Watched]:
    watched = Watched(browser)
    yield watched
    watched.context.close()


def _check_message(page: Page, base: str, text: str, sender: str = "") -> None:
    page.goto(f"{base}/")
    page.fill("textarea[name=text]", text)
    if sender:
        page.fill("input[name=sender]", sender)
    with page.expect_navigation():
        page.click("button[type=submit]")


def _expected_marks(analyzer: Analyzer, text: str) -> list[str]:
    verdict = analyzer.check(parse_record({"text": text}), "zh")
    return [text[s.span[0] : s.span[1]] for s in verdict.signals if s.span]


def test_submit_a_scam_and_see_the_evidence(
    phone: Watched, server_url: str, analyzer: Analyzer
) -> None:
    page = phone.page
    _check_message(page, server_url, SCAM, "17123456789")
    headline = page.text_content("#verdict-title") or ""
    assert "高风险" in headline and "疑似诈骗" in headline

    marks = page.locator("#message mark").all_text_contents()
    assert marks
    for piece in _expected_marks(analyzer, SCAM):
        assert any(piece in mark for mark in marks), piece
    assert page.inner_text("#message") == SCAM
    assert page.get_attribute("#official a.call >> nth=0", "href") == "tel:95188"

    # On a phone the page fits the screen: no sideways scrolling, a big enough button.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = page.locator("button[type=submit]").bounding_box()
    assert box and box["height"] >= 48
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "result-page.png"), full_page=True)
    assert phone.csp_violations == []


def test_the_check_works_without_javascript(browser: Browser, server_url: str) -> None:
    no_js = Watched(browser, javascript=False)
    try:
        _check_message(no_js.page, server_url, SCAM)
        assert "疑似诈骗" in (no_js.page.text_content("#verdict-title") or "")
        assert no_js.page.locator("#message mark").count() > 0
    finally:
        no_js.context.close()


def test_hostile_message_stays_text(phone: Watched, server_url: str) -> None:
    page = phone.page
    _check_message(page, server_url, HOSTILE, sender='"><script>alert(3)</script>')
    page.wait_for_load_state("load")
    assert phone.dialogs == []
    assert page.inner_text("#message") == HOSTILE
    assert page.input_value("textarea[name=text]") == HOSTILE
    assert page.input_value("input[name=sender]") == '"><script>alert(3)</script>'
    assert page.locator("#message script, #message img, img[src=x]").count() == 0


def test_manifest_share_target_and_an_android_style_share(phone: Watched, server_url: str) -> None:
    page = phone.page
    page.goto(f"{server_url}/")
    manifest = page.evaluate(
        """async () => {
            const href = document.querySelector('link[rel=manifest]').href;
            return await (await fetch(href)).json();
        }"""
    )
    share = manifest["share_target"]
    assert share["method"] == "POST"
    assert share["params"] == {"title": "title", "text": "text", "url": "url"}

    # What Chrome on Android does when a person shares an SMS to the installed app: a POST
    # navigation to the action with the form fields; the body in `text`, `url` empty.
    with page.expect_navigation():
        page.evaluate(
            """([share, body]) => {
                const form = document.createElement('form');
                form.method = share.method;
                form.enctype = share.enctype;
                form.action = share.action;
                const fields = {title: '', text: body, url: ''};
                for (const [param, name] of Object.entries(share.params)) {
                    const input = document.createElement('input');
                    input.type = 'hidden';
                    input.name = name;
                    input.value = fields[param];
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [share, SCAM],
        )
    assert page.url == f"{server_url}{share['action']}"
    assert "疑似诈骗" in (page.text_content("#verdict-title") or "")
    assert page.locator("#message mark").count() > 0
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "shared-result-page.png"), full_page=True)


def test_service_worker_serves_the_shell_offline_and_never_caches_a_verdict(
    phone: Watched, server_url: str
) -> None:
    page = phone.page
    page.goto(f"{server_url}/")
    scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert scope == f"{server_url}/"
    # The worker controls the page once it has claimed its clients.
    page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null")

    # A check made through the worker still reaches the server.
    _check_message(page, server_url, SCAM)
    assert "疑似诈骗" in (page.text_content("#verdict-title") or "")
    cached = page.evaluate(
        """async () => {
            const found = {};
            for (const name of await caches.keys()) {
                const cache = await caches.open(name);
                for (const request of await cache.keys()) {
                    found[request.url] = await (await cache.match(request)).text();
                }
            }
            return found;
        }"""
    )
    assert f"{server_url}/" in cached and f"{server_url}/offline" in cached
    assert not any("/share" in url for url in cached)
    assert not any("解冻费2000元" in body for body in cached.values()), "a message was cached"

    phone.context.set_offline(True)
    try:
        page.goto(f"{server_url}/")
        assert page.locator("textarea[name=text]").count() == 1
        page.fill("textarea[name=text]", SCAM)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "没有网络" in page.inner_text("h1")
    finally:
        phone.context.set_offline(False)


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: f"{s['width']}x{s['height']}")
def test_setup_starts_with_one_qr_code(
    browser: Browser, server_url: str, screen: dict[str, int]
) -> None:
    phone = Watched(browser, viewport=screen)
    page = phone.page
    try:
        page.goto(f"{server_url}/setup")
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(
            path=str(OUTPUT / f"setup-first-screen-{screen['width']}x{screen['height']}.png")
        )
        _within_first_screen(page, "#home-qr", screen)
        assert page.evaluate("document.getElementById('home-qr').naturalWidth") > 0
        # The other ways in are folded: closed until tapped.
        assert not page.locator("#http-shortcuts a.button").is_visible()
        page.tap("#http-shortcuts summary")
        assert page.locator("#http-shortcuts a.button").is_visible()
    finally:
        phone.context.close()


def test_setup_page_renders_its_qr_codes(phone: Watched, server_url: str) -> None:
    page = phone.page
    page.goto(f"{server_url}/setup")
    for folded in page.locator("details").all():
        folded.evaluate("d => d.open = true")
    widths = page.evaluate(
        "Array.from(document.querySelectorAll('img.qr')).map(img => img.naturalWidth)"
    )
    assert len(widths) == 2 and all(width > 0 for width in widths)
    link = page.get_attribute("a[href^='http-shortcuts://import']", "href") or ""
    assert link.startswith("http-shortcuts://import?url=http%3A%2F%2F127.0.0.1")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert phone.csp_violations == []
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "setup-page.png"), full_page=True)


ABUSIVE = (
    "你再不还钱，我们就打电话给你通讯录里所有人，还要去你单位找你领导，让你全家都知道你是老赖！"
)
BILL = "【支付宝】您的花呗本期账单1,280.00元将于11月25日到期，请通过支付宝App按时还款。"
SCAM_REPEATS = (
    "【支付宝】您的借呗已逾期，请立即缴纳解冻费2000元到个人账户，并把验证码发给客服。"
    "请添加专员微信 zy8899，或致电 17123456789 / 171-2345-6789，"
    "详情 http://jiedong-alipay.cc http://jiedong-alipay.cc"
)


def _within_first_screen(page: Page, selector: str, screen: dict[str, int]) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    assert box["y"] >= 0 and box["y"] + box["height"] <= screen["height"], (selector, box)


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: f"{s['width']}x{s['height']}")
def test_first_screen_of_a_scam(browser: Browser, server_url: str, screen: dict[str, int]) -> None:
    phone = Watched(browser, viewport=screen)
    page = phone.page
    try:
        _check_message(page, server_url, SCAM_REPEATS, "17123456789")
        name = f"{screen['width']}x{screen['height']}"
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / f"scam-first-screen-{name}.png"))
        page.screenshot(path=str(OUTPUT / f"scam-full-{name}.png"), full_page=True)

        # Level, what to do and a big call button to the official number, without scrolling.
        _within_first_screen(page, "#verdict-title", screen)
        _within_first_screen(page, "#call-now", screen)
        assert page.get_attribute("#call-now", "href") == "tel:95188"
        call = page.locator("#call-now").bounding_box()
        assert call and call["height"] >= 64 and call["width"] >= screen["width"] * 0.7
        _within_first_screen(page, "#why-1", screen)  # the first reason starts on it too
        assert "很可能是诈骗" in page.inner_text("#verdict-title")

        # One reason for the repeated number and one for the repeated link.
        reasons = page.locator("li.reason").all_text_contents()  # folded ones too
        assert sum("171" in r for r in reasons) == 1
        assert sum("jiedong-alipay.cc" in r for r in reasons) == 1

        # Tapping a marked phrase opens its explanation; "知道了" closes it.
        mark = page.locator("#message a.mark-link", has_text="解冻费")
        mark.tap()
        dialog = page.locator("dialog.explain[open]")
        assert dialog.count() == 1 and dialog.is_visible()
        assert "解冻费" in dialog.inner_text()
        page.screenshot(path=str(OUTPUT / f"scam-explanation-{name}.png"))
        dialog.locator("[data-close]").tap()
        assert page.locator("dialog.explain[open]").count() == 0

        # The mark holds whole words: 专员 is never cut in two.
        marks = page.locator("#message mark").all_inner_texts()
        assert all(not m.startswith("员") for m in marks)
        assert page.inner_text("#message") == SCAM_REPEATS

        # Every number in the advice can be tapped to call.
        for number in ("110", "96110", "12321", "95188"):
            assert page.locator(f"#advice a[href='tel:{number}']").count() >= 1, number
        assert page.evaluate("document.documentElement.scrollWidth") <= screen["width"]
        assert phone.csp_violations == []
    finally:
        phone.context.close()


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: f"{s['width']}x{s['height']}")
def test_abusive_collection_and_a_genuine_bill(
    browser: Browser, server_url: str, screen: dict[str, int]
) -> None:
    phone = Watched(browser, viewport=screen)
    page = phone.page
    name = f"{screen['width']}x{screen['height']}"
    try:
        _check_message(page, server_url, ABUSIVE, "13800138000")
        page.screenshot(path=str(OUTPUT / f"abusive-first-screen-{name}.png"))
        _within_first_screen(page, "#call-now", screen)
        assert page.get_attribute("#call-now", "href") == "tel:12378"
        assert "暴力催收" in page.inner_text("#verdict-title")

        _check_message(page, server_url, BILL, "95188")
        page.screenshot(path=str(OUTPUT / f"bill-first-screen-{name}.png"))
        page.screenshot(path=str(OUTPUT / f"bill-full-{name}.png"), full_page=True)
        # A reassuring mark looks different from a suspicious one, not by colour alone.
        mark = page.locator("#message mark.mark-reassuring").first
        style = mark.evaluate(
            "m => [getComputedStyle(m).textDecorationStyle, "
            "getComputedStyle(m, '::before').content]"
        )
        assert style == ["double", '"✓"']
        assert "正规迹象" in page.inner_text("#legend")
        assert "可疑" not in page.inner_text("#legend")
    finally:
        phone.context.close()


def test_large_text_switch_persists(phone: Watched, server_url: str) -> None:
    page = phone.page
    _check_message(page, server_url, SCAM)
    before = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    page.tap("#text-size")
    after = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert after >= before * 1.2
    assert "疑似诈骗" in page.inner_text("#verdict-title")  # the result stays on screen
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "scam-large-text.png"))
    page.goto(f"{server_url}/")  # a new page, rendered by the server, is large from the start
    assert page.evaluate("document.documentElement.classList.contains('large-text')")
    page.tap("#text-size")
    page.goto(f"{server_url}/")
    assert not page.evaluate("document.documentElement.classList.contains('large-text')")


def test_api_docs_are_readable_on_a_phone(browser: Browser, server_url: str) -> None:
    screen = SCREENS[0]
    phone = Watched(browser, viewport=screen)
    page = phone.page
    try:
        page.goto(f"{server_url}/docs")
        page.wait_for_selector(".opblock-summary")
        # Laid out for the phone's width (a viewport), not a shrunken desktop page.
        assert page.evaluate("window.innerWidth") == screen["width"]
        font = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('.opblock-summary-path')).fontSize)"
        )
        assert font >= 14
        page.locator(".opblock-summary", has_text="/v1/check").first.tap()
        page.wait_for_selector(".opblock-body")
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "docs-360x800.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= screen["width"]
    finally:
        phone.context.close()
