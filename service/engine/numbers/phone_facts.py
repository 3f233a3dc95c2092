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

phonenumbers' own geocoder and carrier modules import every country's prefixes in every language
at once: about 110 MB of Python dicts and 1-2 s. dunscan shows places and carriers in zh and en
only, so it reads the same prefixes from service/data/phone_prefixes.npz: phonenumbers' data kept
to those two languages, as sorted integer arrays (about 5 MB in memory, read in ~0.1 s). The
lookups below follow phonenumbers' geocoder.description_for_number and carrier.name_for_number
step by step, so they return the same strings (tests/test_phone_facts.py compares them with the
library on its whole prefix table, and the file with what the installed phonenumbers holds).
Rebuild the file after upgrading phonenumbers: `python -m service.engine.numbers.phone_facts`.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import phonenumbers
from phonenumbers import PhoneNumberType

from service.engine.npz import write_npz
from service.engine.numbers.parse import NumberInfo, NumberType
from service.paths import PHONE_PREFIXES_PATH

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


_LANGS: tuple[Literal["zh", "en"], ...] = ("zh", "en")


class _Texts:
    """The place and carrier names, `texts[i]` decoded from one UTF-8 block when a lookup
    asks: the ~41,000 names as Python strings held ~3 MB in every process, for the few a
    process ever shows."""

    def __init__(self, block: bytes) -> None:
        self.block = block
        # Where each name starts; the last entry is one past the end of the block.
        newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n"))
        self.starts = np.concatenate(([0], newlines + 1, [len(block) + 1])).astype(np.int64)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, index: int) -> str:
        start, end = self.starts.item(index), self.starts.item(index + 1) - 1
        return self.block[start:end].decode("utf-8")


class _PrefixTable:
    """One of phonenumbers' prefix tables (prefix -> {language: text}) for zh and en: sorted
    integer prefixes (a prefix never starts with 0, so its digits and its value are one-to-one),
    and per language the index of its text in `texts` (-1: no text in that language)."""

    def __init__(self, keys: np.ndarray, names: dict[str, np.ndarray], texts: _Texts) -> None:
        self.keys = keys
        self.names = names
        self.texts = texts
        # The largest prefix has the most digits (none starts with 0).
        self.longest = len(str(int(keys[-1]))) if len(keys) else 0

    def describe(self, e164: str, lang: str) -> str:
        """phonenumbers.prefix._prefix_description_for_number with script and region None:
        the longest prefix that has a text in `lang` (zh never falls back to en)."""
        digits = e164[1:]
        names = self.names[lang]
        for length in range(self.longest, 0, -1):
            key = int(digits[:length])
            at = int(np.searchsorted(self.keys, key))
            if at < len(self.keys) and int(self.keys[at]) == key and names[at] >= 0:
                return self.texts[int(names[at])]
        return ""


@dataclass(frozen=True)
class _PrefixData:
    geo: _PrefixTable
    carrier: _PrefixTable
    # region code -> its display name per language (phonenumbers' LOCALE_DATA, "*" resolved)
    regions: dict[str, dict[str, str]]


@functools.cache
def _prefix_data() -> _PrefixData:
    with np.load(PHONE_PREFIXES_PATH, allow_pickle=False) as arrays:
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        texts = _Texts(arrays["texts"].tobytes())
        tables = {
            table: _PrefixTable(
                arrays[f"{table}_keys"],
                {lang: arrays[f"{table}_{lang}"] for lang in _LANGS},
                texts,
            )
            for table in ("geo", "carrier")
        }
    return _PrefixData(tables["geo"], tables["carrier"], meta["regions"])


def load_data() -> None:
    """Read the prefix data now: the server does it before forking, so workers share it."""
    _prefix_data()


def _region_name(region_code: str, lang: str) -> str:
    return _prefix_data().regions.get(region_code, {}).get(lang, "")


def _country_name(number: phonenumbers.PhoneNumber, lang: str) -> str:
    """phonenumbers.geocoder.country_name_for_number."""
    regions = phonenumbers.region_codes_for_country_code(number.country_code)
    if len(regions) == 1:
        return _region_name(regions[0], lang)
    valid_in = "ZZ"
    for region in regions:
        if phonenumbers.is_valid_number_for_region(number, region):
            if valid_in != "ZZ":
                return ""  # valid in two regions: which one is unknown
            valid_in = region
    return _region_name(valid_in, lang)


def _place(number: phonenumbers.PhoneNumber, lang: str) -> str:
    """phonenumbers.geocoder.description_for_number(number, lang) (no user region)."""
    from phonenumbers.phonenumberutil import country_mobile_token, is_number_type_geographical

    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        return ""
    if not is_number_type_geographical(kind, number.country_code):
        return _country_name(number, lang)
    geo = _prefix_data().geo
    token = country_mobile_token(number.country_code)
    national = phonenumbers.national_significant_number(number)
    looked_up = number
    if token and national.startswith(token):
        # Argentina and the like put a mobile token before the area code: geocode without it.
        region = phonenumbers.region_code_for_country_code(number.country_code)
        try:
            looked_up = phonenumbers.parse(national[len(token) :], region)
        except phonenumbers.NumberParseException:
            looked_up = number
    e164 = phonenumbers.format_number(looked_up, phonenumbers.PhoneNumberFormat.E164)
    return geo.describe(e164, lang) or _country_name(number, lang)


_CARRIER_TYPES = frozenset(
    {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PAGER}
)


def _carrier_name(number: phonenumbers.PhoneNumber, lang: str) -> str:
    """phonenumbers.carrier.name_for_number(number, lang)."""
    if phonenumbers.number_type(number) not in _CARRIER_TYPES:
        return ""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _prefix_data().carrier.describe(e164, lang)


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
    place = _place(number, lang) or None
    if place in _NOTHING_FINER:
        place = None
    name = _carrier_name(number, lang) or None
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


# ---------------------------------------------------------------------------------------------
# Building the prefix file from the installed phonenumbers (imports its full data: ~110 MB, 2 s)


def prefix_arrays() -> dict[str, np.ndarray]:
    """phonenumbers' geocoder, carrier and region names for zh and en, as the arrays of
    service/data/phone_prefixes.npz; the same library version always gives the same arrays."""
    from phonenumbers.carrierdata import CARRIER_DATA
    from phonenumbers.geodata import GEOCODE_DATA
    from phonenumbers.geodata.locale import LOCALE_DATA

    texts: dict[str, int] = {}
    arrays: dict[str, np.ndarray] = {}
    for table, data in (("geo", GEOCODE_DATA), ("carrier", CARRIER_DATA)):
        prefixes = sorted((int(p), p) for p, by_lang in data.items() if set(by_lang) & set(_LANGS))
        if any(p.startswith("0") or not p.isdigit() for _, p in prefixes):
            raise ValueError(f"{table}: a prefix that is not a number without leading zero")
        arrays[f"{table}_keys"] = np.array([key for key, _ in prefixes], dtype=np.int64)
        for lang in _LANGS:
            arrays[f"{table}_{lang}"] = np.array(
                [
                    texts.setdefault(data[p][lang], len(texts)) if lang in data[p] else -1
                    for _, p in prefixes
                ],
                dtype=np.int32,
            )
    if any("\n" in text for text in texts):
        raise ValueError("a place or carrier name contains a newline")
    regions: dict[str, dict[str, str]] = {}
    for region, by_lang in sorted(LOCALE_DATA.items()):
        for lang in _LANGS:
            name = by_lang.get(lang, "")
            if name.startswith("*"):  # "*xx": the name is held under language xx
                name = by_lang.get(name[1:], "")
            if name:
                regions.setdefault(region, {})[lang] = name
    meta = {"phonenumbers": phonenumbers.__version__, "languages": list(_LANGS), "regions": regions}
    arrays["texts"] = np.frombuffer("\n".join(texts).encode("utf-8"), dtype=np.uint8)
    arrays["meta"] = np.frombuffer(
        json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8"), dtype=np.uint8
    )
    return arrays


def write_prefix_data(path: Path = PHONE_PREFIXES_PATH) -> None:
    """Write the prefix file (compressed, fixed timestamps: the same data gives the same bytes)."""
    write_npz(path, prefix_arrays(), compress=True)


if __name__ == "__main__":
    write_prefix_data()
    print(f"wrote {PHONE_PREFIXES_PATH} (phonenumbers {phonenumbers.__version__})", file=sys.stderr)
