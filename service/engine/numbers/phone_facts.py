"""归属地 (where a number is registered) and carrier, as Chinese phones show them beside a number.

The place comes from `phonenumbers`' geocoder and the carrier from its carrier map, with the fixes
research/number_facts.md §6 found necessary:

* Virtual-operator (虚拟运营商, MVNO) segments 162/165/167/170x/171 are named as such, with the
  network they resell taken from the allocation table (phonenumbers returns "" for 162 and 165 and
  the bare host network for 167/170x/171, which reads like an ordinary SIM).
* 13-digit IoT cards (14x) are not numbers phonenumbers knows: named as IoT cards, no place.
* "中国"/"China" is what the geocoder says when it knows nothing finer about a Chinese number: that
  is no 归属地, so it becomes None.
* Short codes, 106 ports and numbers without a country (bare local landlines) have no 归属地.

Mobile number portability (nationwide since 2019-12) means the carrier is the segment's original
one; the person's carrier today may differ. Both values are data from the number's prefix only.

The geocoder's data is big: importing it takes 0.2-1 s and about 100 MB (phonenumbers loads every
country's prefixes in every language at once). The CLI imports it on the first long number it
looks up; the server loads it in `Analyzer.warm()`, in the gunicorn master before the workers
fork, so they share one copy instead of each importing its own on its first request.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

import phonenumbers

from service.engine.numbers.parse import NumberInfo, NumberType

__all__ = ["PhoneFacts", "load_data", "phone_facts"]

# number_facts.md §6, from VincentSit/ChinaMobilePhoneNumberRegex@007f228:README-CN.md.
_MVNO_HOSTS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"165|170[356]"), "中国移动", "China Mobile"),
    (re.compile(r"167|170[47-9]|171"), "中国联通", "China Unicom"),
    (re.compile(r"162|170[0-2]"), "中国电信", "China Telecom"),
)
_NOTHING_FINER = frozenset({"中国", "China"})


@dataclass(frozen=True, slots=True)
class PhoneFacts:
    """What a phone shows under a number: "北京市 · 中国移动"; None where nothing is known."""

    location: str | None = None
    carrier: str | None = None
    virtual_operator: bool = False


@functools.cache
def _geocoder() -> ModuleType:
    from phonenumbers import geocoder

    return geocoder


@functools.cache
def _carrier() -> ModuleType:
    from phonenumbers import carrier

    return carrier


def load_data() -> None:
    """Import the geocoder and carrier data now (see the module docstring for why)."""
    _geocoder()
    _carrier()


def _mvno_carrier(national: str, lang: Literal["zh", "en"]) -> str:
    for pattern, host_zh, host_en in _MVNO_HOSTS:
        if pattern.match(national):
            return f"虚拟运营商（{host_zh}网络）" if lang == "zh" else f"MVNO ({host_en} network)"
    return "虚拟运营商" if lang == "zh" else "MVNO"


@functools.lru_cache(maxsize=4096)
def _lookup(normalized: str, lang: Literal["zh", "en"]) -> tuple[str | None, str | None]:
    try:
        number = phonenumbers.parse(normalized, None)
    except phonenumbers.NumberParseException:
        return None, None
    place = _geocoder().description_for_number(number, lang) or None
    if place in _NOTHING_FINER:
        place = None
    name = _carrier().name_for_number(number, lang) or None
    return place, name


def phone_facts(info: NumberInfo | None, lang: Literal["zh", "en"] = "zh") -> PhoneFacts:
    """归属地 and carrier of a classified number (`Directory.classify`)."""
    if info is None or not (info.normalized or "").startswith("+"):
        return PhoneFacts()  # short codes, 106 ports, local numbers without an area code
    normalized = info.normalized or ""
    national = normalized[3:] if normalized.startswith("+86") else ""
    if info.detail == "iot_data_sim":
        return PhoneFacts(carrier="物联网卡" if lang == "zh" else "IoT data card")
    if info.detail == "satellite":
        return PhoneFacts(carrier="卫星电话" if lang == "zh" else "satellite phone")
    place, name = _lookup(normalized, lang)
    if info.detail == "mvno":
        return PhoneFacts(place, _mvno_carrier(national, lang), virtual_operator=True)
    if info.type not in (NumberType.MOBILE, NumberType.INTERNATIONAL):
        # Landlines, 400/800 and 区号+95xxx: phonenumbers has no carrier for them anyway, and a
        # name on a fixed line would only be the prefix's old owner.
        name = None
    return PhoneFacts(place, name)
