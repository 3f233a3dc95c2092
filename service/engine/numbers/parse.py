"""Any way a phone shows a number, parsed into what kind of number it is (no lists involved).

`parse_number(raw)` reads spaces, dashes, brackets, +86/0086/86, 区号+95xxx, 95/96 short codes of
5-9 digits, 106 ports of 5-16 digits, 400/800, 12xxx, mobiles, MVNO and IoT segments, landlines,
foreign numbers and IP-dial prefixes. `phonenumbers` does the long-number work; the Chinese service
numbers it gets wrong are handled first (research/number_facts.md §9): long 106 ports, 10-digit
106 ports read as Beijing landlines, 7-9 digit 95 numbers, 区号+95xxx read as an ordinary landline,
+95188 (Myanmar) vs 95188. Which brand a number belongs to is the directory's job
(service/engine/numbers/directory.py).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers

# phonenumbers compiles each region's patterns through the re module's cache, which holds 512
# patterns: numbers from a few dozen regions outgrow it, and from then on a check recompiles
# patterns evicted by the previous one (~0.5 ms each). Its own cache keeps them (the versions
# that have it).
getattr(phonenumbers.re_util, "enable_pattern_cache", lambda: None)()


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
class ParsedNumber:
    normalized: str | None
    type: NumberType
    detail: str | None
    region: str | None
    short: str | None = None  # the short code inside 区号+short, +86 short, or a +95188 look-alike
    anomalous: bool = False  # +86 before a short code or 400/800: a listed number shown oddly


_INVALID = ParsedNumber(None, NumberType.INVALID, None, None)


def _short_detail(digits: str) -> str | None:
    for pattern, detail in _SHORT_SHAPES:
        if pattern.fullmatch(digits):
            return detail
    return None


def _mobile(digits: str) -> ParsedNumber:
    normalized = "+86" + digits
    if _MVNO.match(digits):
        return ParsedNumber(normalized, NumberType.VIRTUAL_MOBILE, "mvno", "CN")
    if _IOT_11.match(digits):
        # 140/141/144/146/148 are IoT / data-only cards; phonenumbers rejects them as mobiles.
        return ParsedNumber(normalized, NumberType.VIRTUAL_MOBILE, "iot_data_sim", "CN")
    if digits.startswith(("145", "147", "149")):
        return ParsedNumber(normalized, NumberType.MOBILE, "data_sim", "CN")
    if digits.startswith("1749"):
        return ParsedNumber(normalized, NumberType.MOBILE, "satellite", "CN")
    if digits.startswith("192"):
        return ParsedNumber(normalized, NumberType.MOBILE, "broadnet", "CN")
    try:
        number = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException:
        # "179xx00…" begins like China's IP-dialling international prefix (17951 + 00), which
        # phonenumbers strips before it finds no country code; no mobile segment starts so.
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        return ParsedNumber(normalized, NumberType.INVALID, "unallocated_mobile_segment", None)
    return ParsedNumber(normalized, NumberType.MOBILE, "mobile", "CN")


def _international(digits: str) -> ParsedNumber:
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
        return ParsedNumber(
            normalized, NumberType.INTERNATIONAL, "lookalike_short_code", region, digits
        )
    if phonenumbers.is_valid_number(number):
        kind = phonenumbers.number_type(number)
        detail = {
            phonenumbers.PhoneNumberType.MOBILE: "mobile",
            phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
            phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
            phonenumbers.PhoneNumberType.VOIP: "voip",
        }.get(kind, "other")
        return ParsedNumber(normalized, NumberType.INTERNATIONAL, detail, region)
    if region is None:
        return _INVALID
    return ParsedNumber(normalized, NumberType.INTERNATIONAL, "unverified_format", region)


def _landline(domestic: str) -> ParsedNumber:
    """`domestic` starts with 0 (area code)."""
    try:
        number = phonenumbers.parse(domestic, "CN")
    except phonenumbers.NumberParseException:
        return _INVALID
    if phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return ParsedNumber("+86" + domestic[1:], NumberType.LANDLINE, "fixed_line", "CN")
    return _INVALID


def _domestic(digits: str, plus86: bool) -> ParsedNumber:
    """A number as dialled inside China (or what followed +86)."""
    if plus86:
        if digits.startswith("0"):
            digits = digits[1:]  # "+86 (0)21 ..."
        if _MOBILE.fullmatch(digits):
            return _mobile(digits)
        if _SERVICE_400.fullmatch(digits):
            # 400/800 cannot be dialled from abroad: "+86 400..." on a phone is a spoofed display.
            return ParsedNumber(
                "+86" + digits, NumberType.SERVICE_400, "plus86_400", "CN", None, True
            )
        detail = _short_detail(digits)
        if detail and not (digits.startswith("10") and len(digits) >= 10):
            return ParsedNumber(digits, NumberType.SHORT_CODE, "plus86_short", "CN", digits, True)
        return _domestic("0" + digits, plus86=False)

    if _SMS_PORT.fullmatch(digits):
        # Before phonenumbers: it rejects long ports and reads 1065795555 as Beijing 010-6579-5555.
        return ParsedNumber(digits, NumberType.SHORT_CODE, "sms_port_106", "CN")
    if _SERVICE_400.fullmatch(digits):
        return ParsedNumber("+86" + digits, NumberType.SERVICE_400, digits[:3], "CN")
    detail = _short_detail(digits)
    if detail:
        return ParsedNumber(digits, NumberType.SHORT_CODE, detail, "CN")
    if _MOBILE.fullmatch(digits):
        return _mobile(digits)
    if _IOT_13.fullmatch(digits):
        return ParsedNumber("+86" + digits, NumberType.VIRTUAL_MOBILE, "iot_data_sim", "CN")
    area_short = _AREA_PLUS_SHORT.fullmatch(digits)
    if area_short:
        # phonenumbers calls 057195188 a valid landline; it is a display claiming to be 95188.
        return ParsedNumber(
            "+86" + digits[1:],
            NumberType.SHORT_CODE,
            "area_code_plus_short",
            "CN",
            area_short.group(2),
        )
    if digits.startswith("0"):
        return _landline(digits)
    if re.fullmatch(r"[2-8]\d{6,7}", digits):
        return ParsedNumber(digits, NumberType.LANDLINE, "local_no_area_code", "CN")
    if re.fullmatch(r"95\d{8,9}", digits):
        try:
            number = phonenumbers.parse(digits, "CN")
        except phonenumbers.NumberParseException:
            return _INVALID
        if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.SHARED_COST:
            return ParsedNumber("+86" + digits, NumberType.SHORT_CODE, "95_national", "CN")
    return _INVALID


@lru_cache(maxsize=8192)
def parse_number(raw: str) -> ParsedNumber:
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
                inner = parse_number(rest)
                tag = "secondary_12583" if prefix == "12583" else "ip_prefix"
                return ParsedNumber(
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
