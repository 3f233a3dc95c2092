"""The contracts of DESIGN.md as typed models: a record goes in, a verdict comes out."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
)

CATEGORIES: tuple[str, ...] = ("scam", "abusive", "legit", "other")
Category = Literal["scam", "abusive", "legit", "other"]
Level = Literal["high", "medium", "low"]
Lang = Literal["zh", "en"]


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_lone_surrogates(value: Any) -> Any:
    # JSON may escape half a UTF-16 pair ("\ud800") and Python's json reads the raw bytes
    # ED A0 80 the same way; such a string cannot be encoded as UTF-8, so nothing downstream
    # (normalisation, hashing, the response) can handle it. Refused here, as a field error.
    if isinstance(value, str) and _LONE_SURROGATE.search(value):
        raise ValueError("contains a lone surrogate (half of a UTF-16 pair), which is not text")
    return value


# A JSON string that is valid Unicode text.
Text = Annotated[StrictStr, AfterValidator(_no_lone_surrogates)]


def _integral_number(value: Any) -> Any:
    # JSON Schema's "integer" is a number without a fraction, so 42.0 and 4.2e16 are integers
    # to a client (and to the OpenAPI document); StrictInt alone would refuse them.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Whole = Annotated[StrictInt, BeforeValidator(_integral_number)]
# An id the client chose: text or an integer (one validator on the union keeps the error's field
# "id" rather than pydantic's per-member location).
RecordId = Annotated[
    StrictStr | StrictInt, BeforeValidator(_integral_number), AfterValidator(_no_lone_surrogates)
]


# RFC 3339 date-time, what OpenAPI's `format: date-time` means: date, "T", time, UTC offset.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339_only(value: Any) -> Any:
    # pydantic alone would also take 1700000000, "1700000000" and "2026-11-20" as datetimes: a
    # number is ambiguous (seconds? milliseconds? which zone?) and the schema promises a date-time.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    raise ValueError(
        "received_at must be an RFC 3339 date-time with its UTC offset, "
        "e.g. 2026-11-20T09:30:00+08:00"
    )


ReceivedAt = Annotated[datetime, BeforeValidator(_rfc3339_only)]


class _Record(BaseModel):
    # Unknown fields are ignored (clients send extras); wrong types are rejected.
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: RecordId | None = None
    sender: Text | None = None
    received_at: ReceivedAt | None = None


class SmsRecord(_Record):
    kind: Literal["sms"] = "sms"
    text: Text


class CallRecord(_Record):
    kind: Literal["call"]
    sender: Text
    # Field(ge=0) directly on StrictInt: stacked on the Whole alias, pydantic writes the bound
    # into the JSON Schema as "ge" (not a JSON Schema keyword), and the document then promised
    # that negative durations are accepted.
    duration_s: Annotated[StrictInt, Field(ge=0), BeforeValidator(_integral_number)] | None = None
    direction: Literal["incoming", "outgoing", "missed"] | None = None
    # A call may carry a transcript or a note; the verdict works without it.
    text: Text | None = None


Record = Annotated[SmsRecord | CallRecord, Field(discriminator="kind")]
_record_adapter: TypeAdapter[SmsRecord | CallRecord] = TypeAdapter(Record)


def parse_record(data: Any) -> SmsRecord | CallRecord:
    """Validate one input record; `kind` defaults to `sms` when absent.

    Raises pydantic.ValidationError on wrong types or missing fields.
    """
    if isinstance(data, dict) and "kind" not in data:
        data = {**data, "kind": "sms"}
    return _record_adapter.validate_python(data)


class SenderInfo(BaseModel):
    raw: str
    normalized: str | None
    type: str
    brand: str | None = None
    official: bool = False
    detail: str | None = None
    region: str | None = None
    # 归属地 and carrier as a phone shows them (phonenumbers' geocoder and carrier data; virtual
    # operators named as such): absent for short codes, 106 ports and unknown numbers.
    location: str | None = None
    carrier: str | None = None
    virtual_operator: bool = False


class NumberInText(BaseModel):
    """A phone number found in the message text. `span` indexes the ORIGINAL text."""

    raw: str
    normalized: str | None
    type: str
    brand: str | None = None
    official: bool = False
    span: tuple[int, int] | None = None
    location: str | None = None
    carrier: str | None = None
    virtual_operator: bool = False


# What an official-list brand is (rules/numbers/*.yaml): the lists and the verdict share it.
BrandCategory = Literal["lender", "bank", "public_service", "service"]


class ClaimedBrand(BaseModel):
    brand: str
    name: str
    official_numbers: list[str]
    official_verified: bool = True
    app: str | None = None
    category: BrandCategory | None = None


class Signal(BaseModel):
    """One piece of evidence. `span` indexes the ORIGINAL text the person received."""

    id: str
    # "script": a near match to a published scam message (service/engine/known_scripts.py).
    source: Literal["rule", "numbers", "model", "script"]
    category: Category | None = None
    weight: float | None = None
    # "hand-set" (the YAML prior) or "learned" (the shipped model's coefficient for this signal).
    weight_source: Literal["hand-set", "learned"] | None = None
    evidence: str | None = None
    span: tuple[int, int] | None = None
    explanation: str | None = None
    explanation_en: str | None = None
    score: float | None = None
    fail_closed: bool = False
    absent: bool | None = None
    # Where the matched scam script was published (a page URL or owner/repo@commit:path).
    reference: str | None = None


class Verdict(BaseModel):
    kind: Literal["sms", "call"] = "sms"
    risk: Annotated[float, Field(ge=0.0, le=1.0)]
    level: Level
    category: Category
    sender: SenderInfo | None = None
    claimed_brands: list[ClaimedBrand] = []
    signals: list[Signal] = []
    advice: list[str] = []
    model_version: str | None = None
    rules_version: str
    id: str | int | None = None
    # Set when the text is outside what dunscan reads well (e.g. not Chinese): what was checked.
    coverage: str | None = None
    # Every phone number in the text, in order, with its 归属地 and carrier.
    numbers_in_text: list[NumberInText] = []


def error_field(loc: tuple[Any, ...]) -> str:
    """The field path of a validation error, without pydantic's union tag ("sms"/"call")."""
    parts = list(loc)
    if parts and parts[0] in {"sms", "call"}:
        parts = parts[1:]
    return ".".join(str(part) for part in parts) or "record"
