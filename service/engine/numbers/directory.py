"""Numbers, official lists and brands: who a message claims to be, and whether its numbers agree.

Four jobs, one module:

* `classify(raw)` turns any way a phone shows a number (spaces, dashes, brackets, +86/0086/86,
  区号+95xxx, 95/96 short codes of 5-9 digits, 106 ports of 5-16 digits, 400/800, 12xxx, mobiles,
  MVNO and IoT segments, landlines, foreign numbers, IP-dial prefixes) into a `NumberInfo`.
  `phonenumbers` does the long-number work; the Chinese service numbers it gets wrong are handled
  first (research/number_facts.md §9): long 106 ports, 10-digit 106 ports read as Beijing landlines,
  7-9 digit 95 numbers, 区号+95xxx read as an ordinary landline, +95188 (Myanmar) vs 95188.
* `Directory` holds the official lists of rules/numbers/*.yaml, validated into frozen objects.
* `find_brands` / `find_contacts` find the brands a message names and the numbers, links and
  domains it contains, on `Normalized.text` (spans are normalised offsets).
* `number_signals` compares them and emits `Signal`s with ORIGINAL spans.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import phonenumbers
import re2
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from service.engine.normalize import Normalized, normalize
from service.engine.schemas import Signal
from service.paths import NUMBERS_DIR

__all__ = [
    "SIGNAL_WEIGHTS",
    "Brand",
    "BrandMention",
    "Contact",
    "Directory",
    "DomainEntry",
    "NumberEntry",
    "NumberInfo",
    "NumberListError",
    "NumberType",
    "number_signals",
]


class NumberType(StrEnum):
    OFFICIAL_HOTLINE = "official_hotline"  # on a brand's voice list
    OFFICIAL_SMS_PORT = "official_sms_port"  # on a brand's SMS list only
    SHORT_CODE = "short_code"  # other 95/96/10xxx/12xxx/106 numbers, 区号+short, +86 short
    SERVICE_400 = "service_400"  # 400/800 numbers not on a list
    MOBILE = "mobile"
    VIRTUAL_MOBILE = "virtual_mobile"  # MVNO segments 162/165/167/170/171, IoT 14x
    LANDLINE = "landline"
    INTERNATIONAL = "international"  # + or 00 followed by anything but 86
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class NumberInfo:
    """One classified number.

    `normalized` is E.164 ("+86...") for CN long numbers and foreign numbers, bare digits for short
    codes and 106 ports, None when invalid. `brand` is set when the number (as written, after
    stripping +86 and IP-dial prefixes) is on a brand's list; `official` is True only when it is
    listed, the list entry is verified, and the display is the normal one (a +86 before a short
    code or a 400 number is not). `detail` is a subtype: 95_short, 96_short, gov_12, carrier_100,
    national_1010, sms_port_106, area_code_plus_short, plus86_short, plus86_400, 400, 800, mvno,
    iot_data_sim, data_sim, broadnet, satellite, fixed_line, local_no_area_code,
    lookalike_short_code, ip_prefix, secondary_12583, emergency, ...
    """

    raw: str
    normalized: str | None
    type: NumberType
    brand: str | None = None
    official: bool = False
    detail: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class BrandMention:
    """A brand named in the message; start/end index `Normalized.text`."""

    brand_id: str
    start: int
    end: int
    signature: bool = False  # found in a 【...】/[...] signature at the start or end


@dataclass(frozen=True, slots=True)
class Contact:
    """A phone number, link or bare domain found in the message (normalised offsets)."""

    kind: Literal["phone", "url", "domain"]
    raw: str  # as it stands in the normalised text ("400-123-4567", "alipay-huabei[.]cc")
    start: int
    end: int
    info: NumberInfo | None = None  # phones only
    host: str | None = None  # urls and domains, de-obfuscated, lower case, no port
    brand: str | None = None  # owner of that number/domain if listed
    official: bool = False


class NumberListError(ValueError):
    """An official-number list is malformed; the message names the file, the brand and the fix."""


# ---------------------------------------------------------------------------------------------
# Structural parsing (no lists involved)
# ---------------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-()./_\u2010-\u2015]")
_ALLOWED = re.compile(r"\+?[\d\s\-()./_\u2010-\u2015]+")

# IP-dial / secondary-number prefixes a call log may carry before the real number
# (number_facts §7; Samsung/Yulore strip list; China Mobile 和多号 = 12583 + 1..3 + number).
_IP_PREFIXES = (
    "118321",
    "12583",
    "12593",
    "12589",
    "12520",
    "10193",
    "11808",
    "1790",
    "1791",
    "1793",
    "1795",
    "1796",
    "1797",
    "1799",
)
_AFTER_PREFIX = re.compile(r"1[3-9]\d{9}|0[1-9]\d{8,10}|00[1-9]\d{5,14}|861[3-9]\d{9}")

_MOBILE = re.compile(r"1[3-9]\d{9}")
_IOT_13 = re.compile(r"14[0-8]\d{10}")
_SMS_PORT = re.compile(r"106\d{2,13}")
_SERVICE_400 = re.compile(r"[48]00\d{7}")
_AREA = r"0(?:10|2\d|[3-9]\d\d)"
_AREA_PLUS_SHORT = re.compile(rf"({_AREA})(9[56]\d{{3,5}}|1[0-2]\d{{3}})")
# Short codes a phone may show without an area code: (pattern, detail)
_SHORT_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"95\d{3,7}"), "95_short"),
    (re.compile(r"96\d{3,7}"), "96_short"),
    (re.compile(r"1(?:10|19|20|22)"), "emergency"),
    (re.compile(r"1[0-2]\d"), "service_3"),
    (re.compile(r"100\d\d"), "carrier_100"),
    (re.compile(r"1010\d{4}"), "national_1010"),
    (re.compile(r"10\d{3}"), "10_short"),
    (re.compile(r"11\d{3,4}"), "11_short"),
    (re.compile(r"12\d{3}"), "gov_12"),
)
_MVNO = re.compile(r"16[257]|17[01]")
_IOT_11 = re.compile(r"14[01468]")


@dataclass(frozen=True, slots=True)
class _Parsed:
    normalized: str | None
    type: NumberType
    detail: str | None
    region: str | None
    short: str | None = None  # the short code inside 区号+short, +86 short, or a +95188 look-alike
    anomalous: bool = False  # +86 before a short code or 400/800: a listed number shown oddly


_INVALID = _Parsed(None, NumberType.INVALID, None, None)


def _short_detail(digits: str) -> str | None:
    for pattern, detail in _SHORT_SHAPES:
        if pattern.fullmatch(digits):
            return detail
    return None


def _mobile(digits: str) -> _Parsed:
    normalized = "+86" + digits
    if _MVNO.match(digits):
        return _Parsed(normalized, NumberType.VIRTUAL_MOBILE, "mvno", "CN")
    if _IOT_11.match(digits):
        # 140/141/144/146/148 are IoT / data-only cards; phonenumbers rejects them as mobiles.
        return _Parsed(normalized, NumberType.VIRTUAL_MOBILE, "iot_data_sim", "CN")
    if digits.startswith(("145", "147", "149")):
        return _Parsed(normalized, NumberType.MOBILE, "data_sim", "CN")
    if digits.startswith("1749"):
        return _Parsed(normalized, NumberType.MOBILE, "satellite", "CN")
    if digits.startswith("192"):
        return _Parsed(normalized, NumberType.MOBILE, "broadnet", "CN")
    number = phonenumbers.parse(digits, "CN")
    if not phonenumbers.is_valid_number(number):
        return _Parsed(normalized, NumberType.INVALID, "unallocated_mobile_segment", None)
    return _Parsed(normalized, NumberType.MOBILE, "mobile", "CN")


def _international(digits: str) -> _Parsed:
    """`digits` follow + or 00 and do not start with 86."""
    if len(digits) < 3 or len(digits) > 17 or digits.startswith("0"):
        return _INVALID
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return _INVALID
    region = phonenumbers.region_code_for_country_code(number.country_code)
    if region in (None, "ZZ", "001"):
        region = None
    normalized = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if _short_detail(digits) and not phonenumbers.is_valid_number(number):
        # "+95188" is Myanmar 188, "+12315" is a US stub: foreign numbers dressed as CN short codes.
        return _Parsed(normalized, NumberType.INTERNATIONAL, "lookalike_short_code", region, digits)
    if phonenumbers.is_valid_number(number):
        kind = phonenumbers.number_type(number)
        detail = {
            phonenumbers.PhoneNumberType.MOBILE: "mobile",
            phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
            phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
            phonenumbers.PhoneNumberType.VOIP: "voip",
        }.get(kind, "other")
        return _Parsed(normalized, NumberType.INTERNATIONAL, detail, region)
    if region is None:
        return _INVALID
    return _Parsed(normalized, NumberType.INTERNATIONAL, "unverified_format", region)


def _landline(domestic: str) -> _Parsed:
    """`domestic` starts with 0 (area code)."""
    try:
        number = phonenumbers.parse(domestic, "CN")
    except phonenumbers.NumberParseException:
        return _INVALID
    if phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return _Parsed("+86" + domestic[1:], NumberType.LANDLINE, "fixed_line", "CN")
    return _INVALID


def _domestic(digits: str, plus86: bool) -> _Parsed:
    """A number as dialled inside China (or what followed +86)."""
    if plus86:
        if digits.startswith("0"):
            digits = digits[1:]  # "+86 (0)21 ..."
        if _MOBILE.fullmatch(digits):
            return _mobile(digits)
        if _SERVICE_400.fullmatch(digits):
            # 400/800 cannot be dialled from abroad: "+86 400..." on a phone is a spoofed display.
            return _Parsed("+86" + digits, NumberType.SERVICE_400, "plus86_400", "CN", None, True)
        detail = _short_detail(digits)
        if detail and not (digits.startswith("10") and len(digits) >= 10):
            return _Parsed(digits, NumberType.SHORT_CODE, "plus86_short", "CN", digits, True)
        return _domestic("0" + digits, plus86=False)

    if _SMS_PORT.fullmatch(digits):
        # Before phonenumbers: it rejects long ports and reads 1065795555 as Beijing 010-6579-5555.
        return _Parsed(digits, NumberType.SHORT_CODE, "sms_port_106", "CN")
    if _SERVICE_400.fullmatch(digits):
        return _Parsed("+86" + digits, NumberType.SERVICE_400, digits[:3], "CN")
    detail = _short_detail(digits)
    if detail:
        return _Parsed(digits, NumberType.SHORT_CODE, detail, "CN")
    if _MOBILE.fullmatch(digits):
        return _mobile(digits)
    if _IOT_13.fullmatch(digits):
        return _Parsed("+86" + digits, NumberType.VIRTUAL_MOBILE, "iot_data_sim", "CN")
    area_short = _AREA_PLUS_SHORT.fullmatch(digits)
    if area_short:
        # phonenumbers calls 057195188 a valid landline; it is a display claiming to be 95188.
        return _Parsed(
            "+86" + digits[1:],
            NumberType.SHORT_CODE,
            "area_code_plus_short",
            "CN",
            area_short.group(2),
        )
    if digits.startswith("0"):
        return _landline(digits)
    if re.fullmatch(r"[2-8]\d{6,7}", digits):
        return _Parsed(digits, NumberType.LANDLINE, "local_no_area_code", "CN")
    if re.fullmatch(r"95\d{8,9}", digits):
        try:
            number = phonenumbers.parse(digits, "CN")
        except phonenumbers.NumberParseException:
            return _INVALID
        if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.SHARED_COST:
            return _Parsed("+86" + digits, NumberType.SHORT_CODE, "95_national", "CN")
    return _INVALID


@lru_cache(maxsize=8192)
def _parse(raw: str) -> _Parsed:
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    if not text or not _ALLOWED.fullmatch(text):
        return _INVALID
    plus = text.startswith("+")
    digits = _SEPARATORS.sub("", text.lstrip("+"))
    if not digits.isdigit() or len(digits) < 3 or len(digits) > 20:
        return _INVALID
    if plus or digits.startswith("00"):
        digits = digits if plus else digits[2:]
        if digits.startswith("86"):
            return _domestic(digits[2:], plus86=True)
        return _international(digits)
    for prefix in _IP_PREFIXES:
        if digits.startswith(prefix):
            rest = digits[len(prefix) :]
            # 12583 + 1..3 (和多号), 179x + one more digit (17951, 17911, 17909 IP dialling)
            if (prefix == "12583" and rest[:1] in "123") or len(prefix) == 4:
                if not _AFTER_PREFIX.fullmatch(rest) and _AFTER_PREFIX.fullmatch(rest[1:]):
                    rest = rest[1:]
            if _AFTER_PREFIX.fullmatch(rest):
                inner = _parse(rest)
                tag = "secondary_12583" if prefix == "12583" else "ip_prefix"
                return _Parsed(
                    inner.normalized, inner.type, tag, inner.region, inner.short, inner.anomalous
                )
    if digits.startswith("86") and 11 <= len(digits) <= 13:
        # "86 138...", "86-21-6888..." : the country code written without + or 00
        if _MOBILE.fullmatch(digits[2:]):
            return _mobile(digits[2:])
        landline = _landline("0" + digits[2:])
        if landline.type is NumberType.LANDLINE:
            return landline
    return _domestic(digits, plus86=False)


# ---------------------------------------------------------------------------------------------
# Official lists: typed, frozen, validated on load
# ---------------------------------------------------------------------------------------------

_BRAND_ID = r"^[a-z][a-z0-9_]*$"
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Annotated[StrictStr, Field(min_length=3)]
    checked: date
    verified: StrictBool = True
    note: StrictStr | None = None
    shared_with: Annotated[StrictStr, Field(pattern=_BRAND_ID)] | None = None

    @field_validator("checked")
    @classmethod
    def _plausible_date(cls, value: date) -> date:
        if value.year < 2000:
            raise ValueError("checked date must be a real check date (YYYY-MM-DD, 2000 or later)")
        return value


class NumberEntry(_Entry):
    number: StrictStr
    area_code: StrictBool = False  # also genuine when shown as 区号+number (025-96110)

    @field_validator("number")
    @classmethod
    def _is_a_number(cls, value: str) -> str:
        if not re.fullmatch(r"\+?\d{3,16}", value) or _parse(value).type is NumberType.INVALID:
            raise ValueError(
                f"'{value}' is not a valid number: write digits only, quoted, as dialled in China "
                "(landlines keep 0 and the area code) or E.164 '+86...'"
            )
        return value

    @property
    def key(self) -> str:
        normalized = _parse(self.number).normalized
        assert normalized is not None  # guaranteed by the validator
        return normalized


class DomainEntry(_Entry):
    domain: StrictStr

    @field_validator("domain")
    @classmethod
    def _is_a_domain(cls, value: str) -> str:
        if not _DOMAIN.fullmatch(value):
            raise ValueError(f"'{value}' is not a lower-case domain name such as 'alipay.com'")
        return value


class Brand(BaseModel):
    """One brand of the official lists: who it is, what it is called, how it really contacts you."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[StrictStr, Field(pattern=_BRAND_ID)]
    name: Annotated[StrictStr, Field(min_length=1)]
    category: Literal["lender", "bank", "public_service"]
    aliases: Annotated[tuple[Annotated[StrictStr, Field(min_length=2)], ...], Field(min_length=1)]
    app: StrictStr | None = None
    note: StrictStr | None = None
    voice: tuple[NumberEntry, ...] = ()
    sms_ports: tuple[NumberEntry, ...] = ()
    domains: tuple[DomainEntry, ...] = ()

    @field_validator("aliases")
    @classmethod
    def _normalised_aliases(cls, aliases: tuple[str, ...]) -> tuple[str, ...]:
        for alias in aliases:
            folded = normalize(alias).text
            if folded != alias:
                raise ValueError(f"alias '{alias}' is not in normalised form: write '{folded}'")
        return aliases

    @model_validator(mode="after")
    def _no_duplicates(self) -> Brand:
        for field_name, values in (
            ("voice", [e.key for e in self.voice]),
            ("sms_ports", [e.key for e in self.sms_ports]),
            ("domains", [e.domain for e in self.domains]),
            ("aliases", list(self.aliases)),
        ):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"{field_name} lists {', '.join(duplicates)} more than once")
        return self

    @property
    def is_public_service(self) -> bool:
        return self.category == "public_service"

    @property
    def verified(self) -> bool:
        """True when at least one of its numbers comes from a public source."""
        return any(e.verified for e in (*self.voice, *self.sms_ports))

    @property
    def sources(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for entry in (*self.voice, *self.sms_ports, *self.domains):
            seen.setdefault(entry.source, None)
        return tuple(seen)


class _ListFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    brands: tuple[Any, ...]


# libyaml's parser where PyYAML was built with it: the lists load about ten times faster.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that leaves dates as text, so pydantic reports a bad date with its brand."""


_YamlLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (remove it or fix its spelling)"
        elif item["type"] == "string_type" and isinstance(item.get("input"), int):
            message = 'must be a quoted string (write "95188", not 95188)'
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class _Owner:
    brand: str
    voice: bool
    verified: bool


# ---------------------------------------------------------------------------------------------
# Finding brands and contacts in text
# ---------------------------------------------------------------------------------------------

_DOT = r"(?:\.|\[\.\]|\(\.\)|\[dot\]|\(dot\))"
# A bare word.word (no scheme, no www) counts as a link only when it ends in one of these: the
# TLDs scam SMS use, kept by hand on purpose. The Public Suffix List (tldextract's bundled
# snapshot) knows every TLD, and that is the problem here: readme.md, setup.py, photo.zip,
# clip.mov and run.sh all end in real TLDs, so taking the full list would mark file names and
# code in a pasted message as links. Links with a scheme or www. are found whatever their TLD,
# and brand domains are matched label by label against the official lists (domain_owner), so
# no registrable-domain split is needed either.
_TLDS = (
    "com|cn|net|org|cc|top|xyz|vip|info|shop|club|site|online|me|io|co|tk|ml|ga|cf|gq|link|ltd|"
    "wang|ren|work|live|app|pro|fun|icu|asia|hk|tw|mo|biz|cloud|store|tech|bid|win|loan|ink|kim|"
    "red|mobi|name|gov|edu|xin|vip|run|ly|im|gg|so|to|la|ws|us|uk|jp|kr|sg|in|ru|de|fr|one|life|"
    "world|today|space|website|fit|press|host|cyou|buzz|rest|bar|monster|sbs|lol|cfd"
)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PATH = r"[a-z0-9\-._~:/?#@!$&'*+,;=%\[\]]"
_URL_WITH_SCHEME = re2.compile(rf"(?:https?|hxxps?)(?::|\[:\])//{_PATH}+")
_URL_WWW = re2.compile(rf"www{_DOT}{_PATH}+")
_BARE_IP = re2.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?:/" + _PATH + "*)?")
_BARE_DOMAIN = re2.compile(
    rf"{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}(?:{_TLDS})(?::\d{{1,5}})?(?:/{_PATH}*)?"
)
_DOT_FOLD = re.compile(r"\[\.\]|\(\.\)|\[dot\]|\(dot\)")
_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")

# Third-party link shorteners: they hide where a link goes (a brand's own short domain, such as
# u.jd.com, is on the brand's list instead).
SHORT_LINK_HOSTS = frozenset(
    {
        "t.cn",
        "dwz.cn",
        "url.cn",
        "w.url.cn",
        "suo.im",
        "suo.nz",
        "sohu.gg",
        "mrw.so",
        "bit.ly",
        "tinyurl.com",
        "is.gd",
        "goo.gl",
        "ow.ly",
        "t.co",
        "rebrand.ly",
        "cutt.ly",
        "reurl.cc",
        "s.id",
        "v.gd",
        "dwz.mk",
        "0x3.me",
        "6du.in",
        "rrd.me",
        "tb.cn",
        "c.tb.cn",
        "m.tb.cn",
        "kurl.cn",
        "ft12.com",
        "985.so",
        "u.nu",
        "lnkd.in",
        "shorturl.at",
        "tiny.cc",
        "dlj.bz",
    }
)

_PHONE_RUN = re.compile(r"\+?\d(?:[ \-()\u2010-\u2015]{0,3}\d)*")
_GROUP = re.compile(r"\d+")
# A number directly followed by these is an amount, a date, a count or a decimal, not a phone.
_NOT_PHONE_AFTER = re.compile(
    r"(?:元|块|万|千|百|亿|%|笔|期|天|个|年|月|日|号|次|分|秒|小时|岁|人|条|位|倍|周|w|k|\.\d|:\d|,\d)"
)
# ... and numbers right after these are codes, amounts or account numbers.
_NOT_PHONE_BEFORE = (
    "验证码",
    "校验码",
    "动态码",
    "短信码",
    "密码",
    "码",
    "尾号",
    "编号",
    "单号",
    "卡号",
    "账号",
    "账户",
    "合同",
    "工号",
    "身份证",
    "金额",
    "欠款",
    "本金",
    "利息",
    "共计",
    "合计",
    "应还",
    "额度",
    "余额",
    "罚息",
    "费用",
    "¥",
    "￥",
    "$",
    "第",
    "共",
    "约",
    "仅",
    "还款",
    "借款",
    "贷款",
    "逾期",
    "扣款",
    "到账",
    "转账",
    "欠",
    "还",
    "rmb",
    "金",
)
_BEFORE_FILLER = " :为是了：约"
_IDENTITY_WORDS = re2.compile(
    "客服|官方|专员|催收|法务|风控|工作人员|中心|部门|我是|本人是|贷后|审核|经理|通知|客户经理"
)
# "受招联委托 / 招联委托的合作机构": the writer speaks as an agency entrusted by the brand, not
# as the brand itself, so a mobile or landline sender is what such agencies use (what they ask
# for is still judged by the rules: a fee or a private account stays a scam).
_ENTRUSTED_AGENCY = re2.compile(
    "受[^,。!?;]{1,16}委托|委托(?:的)?(?:我司|我方|我们|本公司|本所)|"
    "委托的?(?:合作机构|第三方|催收|资产管理|律师|律所|外包|贷后|服务)"
)
_MAX_GROUPS = 12


def _valid_ipv4(host: str) -> bool:
    match = _IPV4.fullmatch(host)
    return bool(match) and all(int(part) <= 255 for part in match.groups())


def _host_of(text: str) -> str:
    host = _DOT_FOLD.sub(".", text)
    host = re.sub(r"^(?:https?|hxxps?)(?::|\[:\])//", "", host)
    host = re.split(r"[/:?#@]", host, maxsplit=1)[0]
    return host.strip(".")


def _trim_url(text: str, start: int, end: int) -> int:
    """Trailing punctuation belongs to the sentence, not the link."""
    while end > start and text[end - 1] in ".,;:!?)'\"]":
        if text[end - 1] == "]" and text[start:end].endswith("[.]"):
            break
        end -= 1
    return end


# ---------------------------------------------------------------------------------------------
# The directory
# ---------------------------------------------------------------------------------------------


class Directory:
    """The official lists, loaded once; lookups are dictionary hits and pre-compiled patterns."""

    def __init__(self, brands: Mapping[str, Brand], version: str) -> None:
        self.version = version
        self.brands: Mapping[str, Brand] = MappingProxyType(dict(brands))
        by_number: dict[str, list[_Owner]] = {}
        area_ok: dict[str, list[_Owner]] = {}
        by_domain: dict[str, list[tuple[str, bool]]] = {}
        alias_to_brand: dict[str, str] = {}
        lookalike_tokens: dict[str, str] = {}
        for brand in self.brands.values():
            for entries, voice in ((brand.voice, True), (brand.sms_ports, False)):
                for entry in entries:
                    owners = by_number.setdefault(entry.key, [])
                    owners.append(_Owner(brand.id, voice, entry.verified))
                    if entry.area_code:
                        area_ok.setdefault(entry.key, []).append(
                            _Owner(brand.id, voice, entry.verified)
                        )
            for domain in brand.domains:
                by_domain.setdefault(domain.domain, []).append((brand.id, domain.verified))
                label = domain.domain.split(".")[0]
                if len(label) >= 4 and not brand.is_public_service:
                    lookalike_tokens.setdefault(label, brand.id)
            for alias in brand.aliases:
                alias_to_brand[alias] = brand.id
                if alias.isascii() and alias.isalnum() and len(alias) >= 5:
                    lookalike_tokens.setdefault(alias, brand.id)
        self._by_number = {key: tuple(v) for key, v in by_number.items()}
        self._area_ok = {key: tuple(v) for key, v in area_ok.items()}
        self._by_domain = {key: tuple(v) for key, v in by_domain.items()}
        self._alias_to_brand = alias_to_brand
        self._lookalike_tokens = lookalike_tokens
        self.public_service_ids = frozenset(
            brand.id for brand in self.brands.values() if brand.is_public_service
        )
        # Longest alias first so 京东金融 wins over 京东 at the same position.
        ordered = sorted(alias_to_brand, key=lambda a: (-len(a), a))
        self._alias_pattern = re.compile("|".join(re.escape(a) for a in ordered))
        self._cache: dict[str, NumberInfo] = {}

    # -- loading --------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path = NUMBERS_DIR) -> Directory:
        """Load and validate every *.yaml file under `path`; raise NumberListError on any fault."""
        files = sorted(Path(path).glob("*.yaml"))
        if not files:
            raise NumberListError(f"{path}: no *.yaml official-number lists found")
        digest = hashlib.sha256()
        brands: dict[str, Brand] = {}
        origin: dict[str, str] = {}
        for file in files:
            content = file.read_bytes()
            digest.update(file.name.encode() + b"\0" + content + b"\0")
            for brand in _load_file(file, content):
                if brand.id in brands:
                    raise NumberListError(
                        f"{file.name}: brand '{brand.id}': duplicate brand id, already defined in "
                        f"{origin[brand.id]}; merge the two entries"
                    )
                brands[brand.id] = brand
                origin[brand.id] = file.name
        _check_cross_brand(brands, origin)
        return cls(brands, digest.hexdigest()[:12])

    # -- numbers --------------------------------------------------------------------------------

    def classify(self, raw: str) -> NumberInfo:
        """Classify a sender or a number found in text (cached per raw string)."""
        cached = self._cache.get(raw)
        if cached is not None:
            return cached
        info = self._classify(raw)
        if len(self._cache) > 20000:
            self._cache.clear()
        self._cache[raw] = info
        return info

    def _owners_for(self, parsed: _Parsed) -> tuple[_Owner, ...]:
        if parsed.normalized is None or parsed.type is NumberType.INTERNATIONAL:
            return ()
        owners = self._by_number.get(parsed.normalized, ())
        if not owners and parsed.detail == "area_code_plus_short" and parsed.short:
            owners = self._area_ok.get(parsed.short, ())
        return owners

    def _classify(self, raw: str) -> NumberInfo:
        parsed = _parse(raw)
        if parsed.type is NumberType.INVALID:
            return NumberInfo(raw, None, NumberType.INVALID, detail=parsed.detail)
        owners = self._owners_for(parsed)
        if not owners:
            return NumberInfo(
                raw, parsed.normalized, parsed.type, None, False, parsed.detail, parsed.region
            )
        brand = owners[0].brand
        if parsed.anomalous:
            return NumberInfo(
                raw, parsed.normalized, parsed.type, brand, False, parsed.detail, parsed.region
            )
        mine = [o for o in owners if o.brand == brand]
        kind = (
            NumberType.OFFICIAL_HOTLINE
            if any(o.voice for o in mine)
            else NumberType.OFFICIAL_SMS_PORT
        )
        verified = any(o.verified for o in mine)
        return NumberInfo(
            raw, parsed.normalized, kind, brand, verified, parsed.detail, parsed.region
        )

    def owners(self, info: NumberInfo | None) -> frozenset[str]:
        """Every brand that lists this number (shared numbers have several)."""
        if info is None or info.brand is None:
            return frozenset()
        return frozenset(o.brand for o in self._owners_for(_parse(info.raw)))

    def lookalike_brand(self, info: NumberInfo) -> str | None:
        """The brand whose short code this display imitates (+95188, 0571-95188, +86 95188)."""
        parsed = _parse(info.raw)
        if parsed.short is None:
            return None
        owners = self._by_number.get(parsed.short, ())
        return owners[0].brand if owners else None

    def official_numbers(self, brand_id: str) -> list[str]:
        """Verified voice numbers of a brand, main hotline first ([] when none is verified)."""
        brand = self.brands.get(brand_id)
        if brand is None:
            return []
        return [e.number for e in brand.voice if e.verified]

    # -- domains --------------------------------------------------------------------------------

    def domain_owner(self, host: str) -> tuple[str | None, bool]:
        """(brand, verified) for a host or any of its parent domains."""
        labels = host.lower().split(".")
        for index in range(len(labels) - 1):
            owners = self._by_domain.get(".".join(labels[index:]))
            if owners:
                return owners[0][0], owners[0][1]
        return None, False

    def domain_owners(self, host: str) -> frozenset[str]:
        labels = host.lower().split(".")
        found: set[str] = set()
        for index in range(len(labels) - 1):
            found.update(b for b, _ in self._by_domain.get(".".join(labels[index:]), ()))
        return frozenset(found)

    def lookalike_domain_brand(self, host: str) -> str | None:
        """A brand whose name or domain label is embedded in a host it does not own."""
        if self.domain_owners(host):
            return None
        compact = host.lower()
        for token, brand_id in self._lookalike_tokens.items():
            if token in compact:
                return brand_id
        return None

    # -- text -----------------------------------------------------------------------------------

    def find_brands(self, norm: Normalized) -> list[BrandMention]:
        """Brands named in the message: signature first, then in order of appearance, one each."""
        text = norm.text
        link_spans = [(s, e) for s, e, _ in _find_links(text)]
        signature_spans = _signature_spans(text)
        first: dict[str, BrandMention] = {}
        for match in self._alias_pattern.finditer(text):
            alias = match.group()
            start, end = match.span()
            if alias.isascii():
                before = text[start - 1] if start else ""
                after = text[end] if end < len(text) else ""
                if (before.isascii() and before.isalnum()) or (after.isascii() and after.isalnum()):
                    continue
                if len(alias) <= 5 and any(s <= start < e for s, e in link_spans):
                    continue  # "abc" in abc.xyz is not 农业银行
            brand_id = self._alias_to_brand[alias]
            signature = any(
                (s <= start and end <= e) or start == s == e for s, e in signature_spans
            )
            known = first.get(brand_id)
            if known is None or (signature and not known.signature):
                first[brand_id] = BrandMention(brand_id, start, end, signature)
        return sorted(first.values(), key=lambda m: (not m.signature, m.start))

    def find_contacts(self, norm: Normalized) -> list[Contact]:
        """Every phone number, link and bare domain in the message, in order of appearance."""
        text = norm.text
        contacts: list[Contact] = []
        taken: list[tuple[int, int]] = []
        for start, end, kind in _find_links(text):
            raw = text[start:end]
            host = _host_of(raw)
            brand, verified = (None, False) if _valid_ipv4(host) else self.domain_owner(host)
            contacts.append(
                Contact(kind, raw, start, end, host=host, brand=brand, official=verified)
            )
            taken.append((start, end))
        for match in _PHONE_RUN.finditer(text):
            if any(s < match.end() and match.start() < e for s, e in taken):
                continue
            contacts.extend(self._phones_in_run(text, match))
        return sorted(contacts, key=lambda c: c.start)

    def _phones_in_run(self, text: str, match: re.Match[str]) -> list[Contact]:
        groups = [
            (g.group(), match.start() + g.start(), match.start() + g.end())
            for g in _GROUP.finditer(match.group())
        ]
        plus = match.group().startswith("+")
        found: list[Contact] = []
        index = 0
        while index < len(groups):
            # Longest plausible number first, over a bounded window: linear in the run length.
            for stop in range(min(len(groups), index + _MAX_GROUPS), index, -1):
                digits = "".join(g[0] for g in groups[index:stop])
                start = groups[index][1] - (1 if plus and index == 0 else 0)
                end = groups[stop - 1][2]
                info = self._phone_in_text(
                    text, ("+" if plus and index == 0 else "") + digits, start, end
                )
                if info is not None and stop - index > 1 and not info.normalized.startswith("+"):
                    # Short codes are written in one piece; joined pieces must be spaced-out
                    # single digits ("9 5 1 8 8"), or "12 400-123-4567" would yield 12400.
                    if any(len(g[0]) > 1 for g in groups[index:stop]):
                        info = None
                if info is not None:
                    found.append(
                        Contact(
                            "phone",
                            text[start:end],
                            start,
                            end,
                            info=info,
                            brand=info.brand,
                            official=info.official,
                        )
                    )
                    index = stop
                    break
            else:
                index += 1
        return found

    def _phone_in_text(self, text: str, candidate: str, start: int, end: int) -> NumberInfo | None:
        """Classify a digit run found in text, or None when it is not plausibly a phone number."""
        digits = candidate.lstrip("+")
        if len(digits) < 5:
            return None
        info = self.classify(candidate)
        if info.type is NumberType.INVALID or info.detail in (
            "local_no_area_code",
            "emergency",
            "service_3",
            "10_short",
            "11_short",
        ):
            return None
        before = text[max(0, start - 8) : start]
        after = text[end : end + 2]
        if (before[-1:].isascii() and before[-1:].isalpha()) or (
            after[:1].isascii() and after[:1].isalpha()
        ):
            return None  # part of an id such as "sn95188x" or "qq123456"
        if _NOT_PHONE_AFTER.match(after):
            return None
        if before.rstrip(_BEFORE_FILLER).endswith(_NOT_PHONE_BEFORE):
            return None
        return info


def _signature_spans(text: str) -> list[tuple[int, int]]:
    """【...】 / [...] groups at the very start or end of the message (the SMS signature)."""
    spans = []
    head = re.match(r"\s*(?:【[^【】]{1,30}】|\[[^\[\]]{1,30}\])", text)
    if head:
        spans.append(head.span())
    else:
        # normalize() drops an ASCII "]" between Chinese characters ("[招商银行]您..." becomes
        # "[招商银行您..."): a name starting right after a leading "[" still signs the message.
        opened = re.match(r"\s*\[", text)
        if opened:
            spans.append((opened.end(), opened.end()))
    tail = re.search(r"(?:【[^【】]{1,30}】|\[[^\[\]]{1,30}\])\s*$", text)
    if tail:
        spans.append(tail.span())
    return spans


def _find_links(text: str) -> list[tuple[int, int, Literal["url", "domain"]]]:
    found: list[tuple[int, int, Literal["url", "domain"]]] = []

    def free(start: int, end: int) -> bool:
        return not any(s < end and start < e for s, e, _ in found)

    for pattern in (_URL_WITH_SCHEME, _URL_WWW):
        for match in pattern.finditer(text):
            end = _trim_url(text, match.start(), match.end())
            if end > match.start() and free(match.start(), end):
                found.append((match.start(), end, "url"))
    for match in _BARE_IP.finditer(text):
        start, end = match.start(), _trim_url(text, match.start(), match.end())
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if (before.isalnum() and before.isascii()) or before == "." or after.isdigit():
            continue
        if _valid_ipv4(_host_of(text[start:end])) and free(start, end):
            found.append((start, end, "url"))
    for match in _BARE_DOMAIN.finditer(text):
        start, end = match.start(), _trim_url(text, match.start(), match.end())
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if (before and before.isascii() and (before.isalnum() or before in "-_")) or (
            after.isascii() and after.isalnum()
        ):
            continue
        if _host_of(text[start:end]).replace(".", "").isdigit():
            continue  # 1.2.3 version numbers and amounts
        if free(start, end):
            kind: Literal["url", "domain"] = "url" if "/" in text[start:end] else "domain"
            found.append((start, end, kind))
    return sorted(found)


def _load_file(file: Path, content: bytes) -> list[Brand]:
    try:
        data = yaml.load(content, Loader=_YamlLoader)
    except yaml.YAMLError as error:
        raise NumberListError(f"{file.name}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise NumberListError(f"{file.name}: must be a mapping with a 'brands:' list")
    try:
        listing = _ListFile.model_validate(data)
    except ValidationError as error:
        raise NumberListError(f"{file.name}: {_describe(error)}") from error
    brands = []
    for index, item in enumerate(listing.brands):
        brand_id = item.get("id") if isinstance(item, dict) else None
        label = f"brand '{brand_id}'" if brand_id else f"brand #{index + 1}"
        if not isinstance(item, dict):
            raise NumberListError(f"{file.name}: {label}: must be a mapping (id, name, ...)")
        try:
            brands.append(Brand.model_validate(item))
        except ValidationError as error:
            raise NumberListError(f"{file.name}: {label}: {_describe(error)}") from error
    return brands


def _check_cross_brand(brands: Mapping[str, Brand], origin: Mapping[str, str]) -> None:
    """A number, domain or alias belongs to one brand unless both sides say `shared_with`."""

    def claims(brand: Brand) -> list[tuple[str, str, str | None]]:
        items: list[tuple[str, str, str | None]] = []
        items += [("number", e.key, e.shared_with) for e in (*brand.voice, *brand.sms_ports)]
        items += [("domain", e.domain, e.shared_with) for e in brand.domains]
        return items

    seen: dict[tuple[str, str], tuple[str, str | None]] = {}
    for brand in brands.values():
        for what, value, shared_with in claims(brand):
            if shared_with is not None and shared_with not in brands:
                raise NumberListError(
                    f"{origin[brand.id]}: brand '{brand.id}': {what} {value} is shared_with "
                    f"unknown brand '{shared_with}'"
                )
            other = seen.get((what, value))
            if other is not None and other[0] != brand.id:
                other_id, other_shared = other
                if shared_with != other_id or other_shared != brand.id:
                    raise NumberListError(
                        f"{origin[brand.id]}: brand '{brand.id}': {what} {value} is already "
                        f"claimed by brand '{other_id}' ({origin[other_id]}); remove one, or mark "
                        f"both entries with shared_with"
                    )
            seen.setdefault((what, value), (brand.id, shared_with))
        for what, value, shared_with in claims(brand):
            if shared_with is not None and seen.get((what, value), (brand.id,))[0] == brand.id:
                partner = brands[shared_with]
                if value not in {v for w, v, _ in claims(partner) if w == what}:
                    raise NumberListError(
                        f"{origin[brand.id]}: brand '{brand.id}': {what} {value} says shared_with "
                        f"'{shared_with}', but '{shared_with}' does not list it"
                    )
    alias_owner: dict[str, str] = {}
    for brand in brands.values():
        for alias in brand.aliases:
            other_id = alias_owner.setdefault(alias, brand.id)
            if other_id != brand.id:
                raise NumberListError(
                    f"{origin[brand.id]}: brand '{brand.id}': alias '{alias}' is also an alias of "
                    f"'{other_id}'; an alias must name one brand"
                )


# ---------------------------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------------------------

# Hand-set priors (log-odds scale, like rule weights) until the model learns them from the corpus.
SIGNAL_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        # legit; halved when the list entry is unverified. Spoofable (伪基站).
        "official_sender": 1.0,
        "official_port_suffix": 0.4,  # legit, weak: 106 port ending in the brand's 955xx number
        "brand_number_mismatch": 2.5,  # callback number in the text is not the claimed brand's
        "brand_link_mismatch": 2.5,  # link/domain is not the claimed brand's
        "lookalike_domain": 2.0,  # a brand's name inside a domain it does not own
        "sender_mobile_claims_brand": 2.0,  # mobile/virtual mobile sender speaking as a brand
        "sender_landline_claims_brand": 1.5,
        "sender_brand_mismatch": 1.5,  # official number of brand A signs as brand B
        # An unlisted 95/96 code signs as a brand with known numbers.
        "sender_not_brand_number": 1.0,
        "international_sender": 2.0,
        "international_lookalike_official": 3.0,  # +95188 / 0095188: foreign, dressed as 95188
        "virtual_mobile_sender": 0.8,  # MVNO/IoT: a moderate risk feature, not proof (§6)
        "spoofed_short_code": 2.0,  # 区号+95xxx not on a list, +86 before a short code or 400
        "unofficial_400": 1.0,  # 400 caller or callback not on the brand's list
        "public_service_with_link": 3.0,  # genuine 12381/96110 messages carry no links or numbers
        "ip_link": 2.0,
        "short_link": 1.0,
    }
)

_TYPE_ZH = {
    NumberType.MOBILE: "普通手机号",
    NumberType.VIRTUAL_MOBILE: "虚拟运营商/物联网号段",
    NumberType.LANDLINE: "固定电话",
    NumberType.SERVICE_400: "400/800号码",
    NumberType.INTERNATIONAL: "境外号码",
    NumberType.SHORT_CODE: "短号码",
}
_TYPE_EN = {
    NumberType.MOBILE: "an ordinary mobile number",
    NumberType.VIRTUAL_MOBILE: "a virtual-operator/IoT number",
    NumberType.LANDLINE: "a landline",
    NumberType.SERVICE_400: "a 400/800 number",
    NumberType.INTERNATIONAL: "a foreign number",
    NumberType.SHORT_CODE: "a short code",
}
# Which kind of virtual number, in words rather than the internal detail code ("mvno").
_VIRTUAL_ZH = {
    "mvno": "虚拟运营商号段（162/165/167/170/171）",
    "iot_data_sim": "物联网卡号段（14x，一般只能上网）",
}
_PERSONAL_TYPES = (NumberType.MOBILE, NumberType.VIRTUAL_MOBILE, NumberType.LANDLINE)


def number_signals(
    kind: str,
    sender: NumberInfo | None,
    brands: list[BrandMention],
    contacts: list[Contact],
    norm: Normalized | None,
    directory: Directory,
) -> list[Signal]:
    """Signals from the sender and the numbers/links in the text, against the claimed brands."""
    builder = _SignalBuilder(kind, sender, brands, contacts, norm, directory)
    builder.sender_signals()
    builder.contact_signals()
    return builder.signals


class _SignalBuilder:
    def __init__(
        self,
        kind: str,
        sender: NumberInfo | None,
        brands: list[BrandMention],
        contacts: list[Contact],
        norm: Normalized | None,
        directory: Directory,
    ) -> None:
        self.kind = kind
        self.sender = sender
        self.contacts = contacts
        self.norm = norm
        self.directory = directory
        self.signals: list[Signal] = []
        known = [m for m in brands if m.brand_id in directory.brands]
        self.claimed = [m.brand_id for m in known]
        self.signature = next((m for m in known if m.signature), None)
        self.lenders = [b for b in self.claimed if not directory.brands[b].is_public_service]
        self.sender_owners = directory.owners(sender)
        self.sender_anomalous = bool(sender and sender.brand and not _displayed_normally(sender))

    # -- helpers --------------------------------------------------------------------------------

    def _name(self, brand_id: str | None) -> str:
        if brand_id is None:
            return ""
        brand = self.directory.brands.get(brand_id)
        return brand.name if brand else brand_id

    def _brand_list(self, brand_ids: list[str]) -> str:
        return "、".join(self._name(b) for b in brand_ids)

    def _add(
        self,
        signal_id: str,
        category: str,
        zh: str,
        en: str,
        contact: Contact | None = None,
        weight: float | None = None,
    ) -> None:
        span = evidence = None
        if contact is not None and self.norm is not None:
            span = self.norm.span(contact.start, contact.end)
            evidence = self.norm.evidence(contact.start, contact.end)
        elif self.sender is not None and contact is None:
            evidence = self.sender.raw
        self.signals.append(
            Signal(
                id=signal_id,
                source="numbers",
                category=category,  # type: ignore[arg-type]
                weight=SIGNAL_WEIGHTS[signal_id] if weight is None else weight,
                evidence=evidence,
                span=span,
                explanation=zh,
                explanation_en=en,
            )
        )

    def _claims_identity(self) -> bool:
        if self.signature is not None:
            return True
        if not (self.claimed and self.norm) or _ENTRUSTED_AGENCY.search(self.norm.text):
            return False
        return bool(_IDENTITY_WORDS.search(self.norm.text))

    # -- the sender -----------------------------------------------------------------------------

    def sender_signals(self) -> None:
        sender = self.sender
        if sender is None:
            return
        if sender.type is NumberType.INTERNATIONAL:
            self._international_sender(sender)
        elif _parse(sender.raw).anomalous or (
            sender.detail == "area_code_plus_short" and sender.brand is None
        ):
            self._spoofed_short_code(sender)
        elif sender.brand is not None:
            self._official_sender(sender)
        elif sender.type in _PERSONAL_TYPES:
            if sender.type is NumberType.VIRTUAL_MOBILE:
                virtual_zh = _VIRTUAL_ZH.get(sender.detail or "", _TYPE_ZH[sender.type])
                self._add(
                    "virtual_mobile_sender",
                    "scam",
                    f"来电/短信号码属于{virtual_zh}，这类号段常被用于诈骗；"
                    "正规平台不用此类号码联系客户",
                    f"The sender is {_TYPE_EN[sender.type]} ({sender.detail}), a range often used "
                    "in fraud; licensed platforms do not contact customers from such numbers",
                )
            if (self.lenders or self.claimed) and self._claims_identity():
                landline = sender.type is NumberType.LANDLINE
                names = self._brand_list(self.claimed[:2])
                self._add(
                    "sender_landline_claims_brand" if landline else "sender_mobile_claims_brand",
                    "scam",
                    f"短信/来电自称{names}，却来自{_TYPE_ZH[sender.type]}；正规平台和机构只用官方号码联系客户",
                    f"The message speaks as {names} but comes from {_TYPE_EN[sender.type]}; "
                    "platforms and authorities contact customers only from official numbers",
                )
        elif sender.type is NumberType.SERVICE_400:
            if self.kind == "call" or self.lenders:
                self._add(
                    "unofficial_400",
                    "scam",
                    "该400号码不在任何官方名单上；正规企业的400热线一般只接听、不外呼",
                    "This 400 number is on no official list; company 400 hotlines normally only "
                    "take calls and do not call out",
                )
        elif sender.type is NumberType.SHORT_CODE:
            self._unlisted_short_sender(sender)

    def _international_sender(self, sender: NumberInfo) -> None:
        if sender.detail == "lookalike_short_code":
            imitated = self.directory.lookalike_brand(sender)
            short = _parse(sender.raw).short or ""
            who = f"（{self._name(imitated)}的官方号码）" if imitated else ""
            self._add(
                "international_lookalike_official",
                "scam",
                f"号码{sender.raw}是境外号码（国家/地区：{sender.region or '未知'}），"
                f"只是看起来像官方短号{short}{who}；境外来电会带+或00前缀，官方短号不会这样显示",
                f"{sender.raw} is a foreign number (region {sender.region or 'unknown'}) that only "
                f"looks like the official short code {short}; calls from abroad carry + or 00",
            )
            return
        self._add(
            "international_sender",
            "scam",
            f"号码来自境外（{sender.region or '未知地区'}）；"
            "国内平台、银行和公检法不会用境外号码联系你",
            f"The number is foreign ({sender.region or 'unknown region'}); Chinese platforms, "
            "banks and police do not contact you from abroad",
        )

    def _spoofed_short_code(self, sender: NumberInfo) -> None:
        imitated = sender.brand or self.directory.lookalike_brand(sender)
        who = f"（像是{self._name(imitated)}的号码）" if imitated else ""
        if sender.detail == "plus86_400":
            zh = f"400号码无法从境外拨打，显示为“+86 400”{who}多为改号软件伪造"
            en = "400 numbers cannot be dialled from abroad; a '+86 400' display is usually spoofed"
        elif sender.detail == "plus86_short":
            zh = f"国内收到的官方短号不会带“+86”前缀{who}，这种显示常见于改号软件"
            en = "Official short codes received in China do not carry +86; this display is typical "
            en += "of caller-ID spoofing"
        else:
            zh = f"“区号+95/96短号”{who}不在官方名单上，警方提示这是常见的改号冒充方式"
            en = "An area code in front of a 95/96 short code is not on any official list; police "
            en += "warn that this display is a common spoof"
        weight = None if imitated else 1.5
        self._add("spoofed_short_code", "scam", zh, en, weight=weight)

    def _official_sender(self, sender: NumberInfo) -> None:
        owners = self.sender_owners
        brand_id = sender.brand
        if (
            self.signature is not None
            and self.signature.brand_id not in owners
            and not (
                self.directory.brands[self.signature.brand_id].is_public_service
                and self.directory.brands[brand_id].is_public_service
            )
        ):
            self._add(
                "sender_brand_mismatch",
                "scam",
                f"发送号码属于{self._name(brand_id)}，短信却署名{self._name(self.signature.brand_id)}",
                f"The sender number belongs to {self._name(brand_id)}, but the message is signed "
                f"{self._name(self.signature.brand_id)}",
            )
            return
        if self.lenders and not owners.intersection(self.claimed):
            return  # a bank's number quoting another platform: no evidence either way
        verified = sender.official
        caveat_zh = "" if verified else "（该号码来自未经公开来源核实的名单）"
        caveat_en = "" if verified else " (the list entry is not verified by a public source)"
        self._add(
            "official_sender",
            "legit",
            f"发送号码是{self._name(brand_id)}的官方号码{caveat_zh}；但官方号码也可能被伪基站或改号软件冒用，"
            "仍需看内容是否要求转账、验证码或点击链接",
            f"The sender is an official number of {self._name(brand_id)}{caveat_en}; official "
            "numbers can still be spoofed, so the content matters",
            weight=SIGNAL_WEIGHTS["official_sender"] * (1.0 if verified else 0.5),
        )

    def _unlisted_short_sender(self, sender: NumberInfo) -> None:
        if sender.detail == "sms_port_106":
            for brand_id in self.lenders:
                for number in self.directory.official_numbers(brand_id):
                    if number.startswith("95") and (sender.normalized or "").endswith(number):
                        self._add(
                            "official_port_suffix",
                            "legit",
                            f"106短信端口以{self._name(brand_id)}的官方号码{number}结尾（弱证据：端口也可能被租用或伪造）",
                            f"The 106 port ends with {self._name(brand_id)}'s official number "
                            f"{number} (weak evidence: ports can be rented or spoofed)",
                        )
                        return
            return
        if sender.detail in ("95_short", "96_short") and self.signature is not None:
            brand_id = self.signature.brand_id
            if self.directory.official_numbers(brand_id):
                self._add(
                    "sender_not_brand_number",
                    "scam",
                    f"短信署名{self._name(brand_id)}，发送号码{sender.raw}却不是它的官方号码"
                    f"（官方：{'、'.join(self.directory.official_numbers(brand_id)[:2])}）",
                    f"Signed {self._name(brand_id)}, but sent from {sender.raw}, which is not one "
                    "of its official numbers",
                )

    # -- the text -------------------------------------------------------------------------------

    def contact_signals(self) -> None:
        if self.norm is None:
            return
        public = self._public_service_voice()
        for contact in self.contacts:
            # Public services point to each other (a 国家反诈中心 notice gives 96110 and 110).
            if public is not None and not self._belongs_to(
                contact, self.directory.public_service_ids
            ):
                self._add(
                    "public_service_with_link",
                    "scam",
                    f"自称{self._name(public)}的短信里出现了链接或其他号码；真正的12381/96110提醒"
                    "不含链接、不含回拨号码，这条很可能是伪造的",
                    f"A message presenting itself as {self._name(public)} contains a link or "
                    "another number; genuine 12381/96110 warnings never do, so it is likely fake",
                    contact=contact,
                )
            if contact.kind == "phone":
                self._phone_contact(contact)
            else:
                self._link_contact(contact)

    def _public_service_voice(self) -> str | None:
        """The public service the message speaks as (sender or signature), if any."""
        for brand_id in sorted(self.sender_owners):
            if self.directory.brands[brand_id].is_public_service and not self.sender_anomalous:
                return brand_id
        if self.signature and self.directory.brands[self.signature.brand_id].is_public_service:
            return self.signature.brand_id
        return None

    def _belongs_to(self, contact: Contact, brand_ids: Set[str]) -> bool:
        if contact.kind == "phone":
            return bool(self.directory.owners(contact.info) & brand_ids)
        return bool(contact.host and self.directory.domain_owners(contact.host) & brand_ids)

    def _phone_contact(self, contact: Contact) -> None:
        info = contact.info
        if info is None or not self.lenders:
            return
        owners = self.directory.owners(info)
        if info.detail == "carrier_100" or (owners and _displayed_normally(info)):
            return
        names = self._brand_list(self.lenders[:2])
        official = "、".join(
            n for b in self.lenders[:2] for n in self.directory.official_numbers(b)[:2]
        )
        official_zh = (
            f"（官方号码：{official}）"
            if official
            else "（该平台没有核实过的官方号码，请只在官方App内联系）"
        )
        type_zh = _TYPE_ZH.get(info.type, "号码")
        self._add(
            "brand_number_mismatch",
            "scam",
            f"短信自称{names}，让你联系的{type_zh}{contact.raw}却不是它的官方号码{official_zh}",
            f"The message claims to be from {names}, but the number it gives ({contact.raw}, "
            f"{_TYPE_EN.get(info.type, 'a number')}) is not one of its official numbers",
            contact=contact,
        )
        if info.type is NumberType.SERVICE_400:
            self._add(
                "unofficial_400",
                "scam",
                f"400号码{contact.raw}不在{names}的官方名单上",
                f"The 400 number {contact.raw} is not on {names}'s official list",
                contact=contact,
                weight=0.5,
            )

    def _link_contact(self, contact: Contact) -> None:
        host = contact.host or ""
        if _valid_ipv4(host):
            self._add(
                "ip_link",
                "scam",
                "链接直接指向一个IP地址，正规平台不会这样发链接",
                "The link points straight at an IP address; real platforms never send such links",
                contact=contact,
            )
        elif host in SHORT_LINK_HOSTS:
            self._add(
                "short_link",
                "scam",
                "短链接隐藏了真实网址，请不要点击",
                "A short link hides where it really goes; do not open it",
                contact=contact,
            )
        owners = self.directory.domain_owners(host) if not _valid_ipv4(host) else frozenset()
        imitated = self.directory.lookalike_domain_brand(host) if host else None
        if imitated is not None:
            self._add(
                "lookalike_domain",
                "scam",
                f"网址{host}含有{self._name(imitated)}的名称，但不是它的官方域名，这是常见的仿冒网站",
                f"{host} contains the name of {self._name(imitated)} but is not its domain: a "
                "typical phishing look-alike",
                contact=contact,
            )
        if not self.lenders or owners:
            return
        names = self._brand_list(self.lenders[:2])
        has_domains = any(self.directory.brands[b].domains for b in self.lenders)
        self._add(
            "brand_link_mismatch",
            "scam",
            f"短信自称{names}，链接{host}却不是它的官方网址；请只在官方App内操作",
            f"The message claims to be from {names}, but the link ({host}) is not one of its "
            "official domains; act only inside the official app",
            contact=contact,
            weight=None if has_domains else 1.5,
        )


def _displayed_normally(info: NumberInfo) -> bool:
    """False for listed numbers shown in a way a genuine caller would not use (+86 95188)."""
    return not _parse(info.raw).anomalous
