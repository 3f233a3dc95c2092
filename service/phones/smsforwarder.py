"""What SmsForwarder (github.com/pppscn/SmsForwarder) really sends, turned into dunscan records.

Every fact below was read in the app's source; the commits are named so a later change can be
checked against them:

- `app/src/main/kotlin/cn/ppps/forwarder/utils/sender/WebhookUtils.kt` @ ca5d9945 (v3.5, 2026-01):
  * signing: `stringToSign = "$timestamp\\n" + secret`, HmacSHA256 keyed with the secret,
    `sign = URLEncoder.encode(Base64.encode(mac, NO_WRAP), "UTF-8")`; timestamp in ms.
  * default (no webParams): form params `from=[from]&content=[content]&timestamp=[timestamp]`,
    plus `&sign=[sign]` with a secret. POST sends them as an x-www-form-urlencoded body
    (XHttp2 `@FormUrlEncoded @FieldMap`, so the already URL-encoded sign is encoded again);
    PUT/PATCH send them as a query string (`@QueryMap`).
  * webParams starting with `{` (or a JSON Content-Type header): a JSON body, tags replaced,
    `[sign]` URL-encoded once, `[from]` NOT JSON-escaped.
  * GET with webParams: tags URL-encoded into the query, `[sign]` URL-encoded twice.
  * GET without webParams: `from=` is appended to a copy of the URL that is never sent; the URL
    that is sent is `<webServer>&content=...[&timestamp=...&sign=...]` (no `?`, no `from`).
  * the request is retried as-is (same timestamp and sign) when retries are configured.
- `entity/MsgInfo.kt` @ 43278562: `[content]` is the SMS template output, by default
  `{{FROM}}\\n{{SMS}}\\n{{CARD_SLOT}}\\nSubId：{{CARD_SUBID}}\\n{{RECEIVE_TIME}}\\n{{DEVICE_NAME}}`,
  trimmed (`UID：` instead of `SubId：` for app notifications); `[org_content]` is the raw body.
- `receiver/CallReceiver.kt` @ ca5d9945 and `utils/PhoneUtils.kt#getCallMsg` @ 78bfb797: a call's
  body is localized text, one field per line: contact (`通讯录名：`), optional via number
  (`被呼号码：`), optional date (`通话时间：yyyy-MM-dd HH:mm:ss`), optional duration
  (`通话时长：Ns`, or `响铃时长：Ns` for a missed call), type (`通话类型：<label>`), optional
  `呼叫转移：是`. Live notices (types 4–6) carry only the contact and type lines.
- `res/values-zh-rCN`, `values-zh-rTW`, `values-en/strings.xml` @ 0036044d / 00195e6c: the labels
  and the six type names (1 来电挂机 2 去电挂机 3 未接来电 4 来电提醒 5 来电接通 6 去电拨出).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, unquote

from service.engine.schemas import CallRecord, SmsRecord

if TYPE_CHECKING:
    from service.phones.store import HookInfo

HOOK_PATH_PREFIX = "/hooks/sf/"

# The JSON template we recommend: the raw body, no template block to unpick, and the signature.
RECOMMENDED_TEMPLATE = (
    '{"from":"[from]","org_content":"[org_content]","receive_time":"[receive_time]",'
    '"timestamp":"[timestamp]","sign":"[sign]"}'
)


class ForwarderRequestError(ValueError):
    """The request does not carry a usable record; `field` names what is missing or wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- signing -------------------------------------------------------------------------------


def signature_base64(secret: str, timestamp: str | int) -> str:
    """Base64 of HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"), as the app computes it."""
    message = f"{timestamp}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(secret: str, timestamp: str | int) -> str:
    """The `sign` value exactly as SmsForwarder puts it into its parameters (URL-encoded once).

    Java's URLEncoder and Python's quote_plus agree on every character Base64 can produce.
    """
    return quote_plus(signature_base64(secret, timestamp))


def verify_sign(secret: str, timestamp: str, received: str) -> bool:
    """True when `received` is the signature for `timestamp`, as sent or percent-decoded (≤ twice).

    Which of the three forms arrives depends on the request mode (see the module docstring); all
    comparisons run in constant time, and all three are made so timing says nothing about which.
    """
    expected = signature_base64(secret, timestamp).encode()
    once = unquote(received)
    candidates = (received, once, unquote(once))
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in candidates]
    return any(matches)


def parse_timestamp_ms(value: str | None) -> int:
    if value is None or not value.strip():
        raise ForwarderRequestError("timestamp is required when the hook has a secret", "timestamp")
    try:
        return int(value.strip())
    except ValueError as error:
        message = "timestamp must be milliseconds since 1970"
        raise ForwarderRequestError(message, "timestamp") from error


def timestamp_is_fresh(timestamp_ms: int, max_skew_s: float, now: float | None = None) -> bool:
    now_ms = (time.time() if now is None else now) * 1000
    return abs(now_ms - timestamp_ms) <= max_skew_s * 1000


# --- call texts ----------------------------------------------------------------------------

_LABELS: dict[str, tuple[str, ...]] = {
    "contact": ("通讯录名", "通訊錄名", "Contact"),
    "via": ("被呼号码", "被呼號碼", "Via number"),
    "date": ("通话时间", "通話時間", "Call date"),
    "duration": ("通话时长", "通話時長", "Call duration"),
    "ring": ("响铃时长", "響鈴時長", "Ring duration"),
    "type": ("通话类型", "通話類型", "Call type"),
}
_LABEL_OF = {label.lower(): key for key, labels in _LABELS.items() for label in labels}
_LINE = re.compile(
    r"^\s*(" + "|".join(re.escape(label) for label in _LABEL_OF) + r")\s*[:：]\s*(.*?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_DIRECTIONS: dict[str, str] = {}
for _names, _direction in (
    (("来电挂机", "來電掛機", "Incoming Ended"), "incoming"),
    (("去电挂机", "去電掛機", "Outgoing Ended"), "outgoing"),
    (("未接来电", "未接來電", "Missed"), "missed"),
    (("来电提醒", "來電提醒", "Incoming Received"), "incoming"),
    (("来电接通", "來電接通", "Incoming Answered"), "incoming"),
    (("去电拨出", "去電拨出", "去電撥出", "Outgoing Started"), "outgoing"),
):
    for _name in _names:
        _DIRECTIONS[_name.lower()] = _direction
_SECONDS = re.compile(r"(\d+)\s*(?:s|秒)?", re.IGNORECASE)


@dataclass(frozen=True)
class CallText:
    """The fields of a SmsForwarder call text that the verdict can use."""

    direction: str | None
    duration_s: int | None
    ring_s: int | None
    call_time: str | None


def parse_call_text(text: str) -> CallText | None:
    """Read a call-record text; None when the text is not one (no call-type line)."""
    fields: dict[str, str] = {}
    for match in _LINE.finditer(text):
        fields.setdefault(_LABEL_OF[match.group(1).lower()], match.group(2))
    if "type" not in fields:
        return None
    direction = _DIRECTIONS.get(fields["type"].lower())
    duration = _seconds(fields.get("duration"))
    ring = _seconds(fields.get("ring"))
    if direction == "missed":
        duration = 0  # nobody talked; the app reports the ringing time instead
    return CallText(direction, duration, ring, fields.get("date"))


def _seconds(value: str | None) -> int | None:
    if not value:
        return None
    match = _SECONDS.match(value)
    return int(match.group(1)) if match else None


# --- the default [content] block ------------------------------------------------------------

_SUB_ID_LINE = re.compile(r"^(?:SubId|UID)：-?\d+$")
_RECEIVE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@dataclass(frozen=True)
class ContentBlock:
    sender: str | None
    body: str
    receive_time: str | None


def split_default_content(content: str, sender: str | None) -> ContentBlock:
    """Take the body out of the default template block; anything else is taken whole.

    The block is FROM / body (any number of lines) / CARD_SLOT / SubId：n / RECEIVE_TIME /
    DEVICE_NAME, trimmed, so the slot and device name may be empty or missing at the ends.
    The SubId line is the anchor: the last one that fits is the template's.
    """
    lines = content.replace("\r\n", "\n").split("\n")
    anchor = next(
        (i for i in range(len(lines) - 1, 1, -1) if _SUB_ID_LINE.match(lines[i].strip())), None
    )
    if anchor is None:
        if sender and len(lines) > 1 and lines[0].strip() == sender.strip():
            return ContentBlock(sender, "\n".join(lines[1:]).strip(), None)
        return ContentBlock(sender, content.strip(), None)
    first = lines[0].strip()
    body = "\n".join(lines[1 : anchor - 1]).strip()
    after = [line.strip() for line in lines[anchor + 1 :]]
    receive_time = after[0] if after and _RECEIVE_TIME.match(after[0]) else None
    return ContentBlock(sender or first or None, body, receive_time)


# --- request fields -> record ---------------------------------------------------------------

# Names a template may use for each field; the first present wins.
_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "sender": ("from", "sender", "phone", "number"),
    "body": ("org_content", "text", "body", "sms"),
    "content": ("content", "msg", "message"),
    "received_at": ("receive_time", "received_at", "time"),
    "kind": ("kind", "type"),
}


def _first(fields: dict[str, Any], key: str) -> str | None:
    for name in _FIELD_NAMES[key]:
        value = fields.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _received_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None  # a custom [receive_time:FMT] we cannot read; the verdict does not need it


def to_record(fields: dict[str, Any]) -> SmsRecord | CallRecord:
    """Build the record from the request's fields (already merged from query, form or JSON)."""
    sender = _first(fields, "sender")
    sender = sender.strip() if sender else None
    body = _first(fields, "body")
    receive_time = _first(fields, "received_at")
    if body is None:
        content = _first(fields, "content")
        if content is None:
            raise ForwarderRequestError(
                "no message: send org_content (recommended) or the default content field",
                "org_content",
            )
        block = split_default_content(content, sender)
        sender, body, receive_time = block.sender, block.body, receive_time or block.receive_time
    kind = (_first(fields, "kind") or "").strip().lower()
    call = parse_call_text(body) if kind != "sms" else None
    if call is not None or kind == "call":
        if not sender:
            raise ForwarderRequestError("a call record needs the caller's number in from", "from")
        return CallRecord(
            kind="call",
            sender=sender,
            duration_s=call.duration_s if call else None,
            direction=call.direction if call else None,  # type: ignore[arg-type]
            received_at=_received_at(receive_time),
        )
    if not body.strip():
        raise ForwarderRequestError("the message text is empty", "org_content")
    return SmsRecord(kind="sms", sender=sender, text=body, received_at=_received_at(receive_time))


def record_fingerprint(hook_id: int, record: SmsRecord | CallRecord) -> str:
    """Same hook, same kind, same sender, same body: the same record (no message id is sent)."""
    sender = re.sub(r"[^\d+]", "", record.sender or "")
    parts = [str(hook_id), record.kind, sender, record.text or ""]
    if isinstance(record, CallRecord):
        parts += [str(record.direction), str(record.duration_s), str(record.received_at)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# --- what the phone owner types into the app ------------------------------------------------


def setup_settings(url: str, has_secret: bool) -> dict[str, Any]:
    """The SmsForwarder 发送通道 → Webhook settings for one hook, as shown by CLI and setup page."""
    settings: dict[str, Any] = {
        "channel": "Webhook",
        "webServer": url,
        "method": "POST",
        "webParams": RECOMMENDED_TEMPLATE,
        "headers": {"Content-Type": "application/json"},
        "secret": "the secret you gave this hook" if has_secret else "(leave empty)",
        "response": "(leave empty: any 2xx answer counts as delivered)",
    }
    return settings


SETUP_STEPS_ZH: tuple[str, ...] = (
    "安装“短信转发器”(SmsForwarder)，在【通用设置】中开启【转发短信广播】"
    "（需要检查来电时再开启【转发通话记录】并选择通话类型），按提示授予短信、通话记录、通讯录权限，"
    "并允许自启动、后台运行。",
    "【发送通道】→ ＋ → Webhook：按下方设置填写 Webhook Server、请求方式、消息模板、"
    "Headers 和 Secret，点【测试】应收到 200 应答。",
    "【转发规则】→ ＋ → 短信 → 全部转发 → 选择刚才的发送通道并保存；"
    "需要检查来电时再添加一条“来电”规则。",
    "在手机上安装 ntfy（安卓）或 Bark（iPhone）并订阅同一个主题，高风险短信会推送提醒。",
)


def hook_setup(hook: HookInfo, base_url: str | None = None) -> dict[str, Any]:
    """Everything a setup page shows for a hook just created with store.create_hook().

    {"url", "secret", "settings" (setup_settings), "steps" (zh-CN)}; the token is only known at
    creation, so call this right after create_hook and show the result once.
    """
    url = hook.url(base_url)
    return {
        "url": url,
        "secret": hook.secret,
        "settings": setup_settings(url, hook.has_secret),
        "steps": list(SETUP_STEPS_ZH),
    }
