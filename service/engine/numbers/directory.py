"""The official directory: the lists of rules/numbers/*.yaml, and what they say about a message.

`Directory` holds the brands with their official numbers, SMS ports and domains, validated into
frozen objects when loaded (a bad file stops start-up naming the file, the brand and the fix).
`classify(raw)` is a parsed number (service/engine/numbers/parse.py) with its owner;
`find_brands` / `find_contacts` find the brands a message names and the numbers, links and
domains it contains, on `Normalized.text` (spans are normalised offsets; where links stand is
service/engine/numbers/links.py's job).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

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

from service.engine.datafiles import DataFiles
from service.engine.normalize import Normalized, normalize
from service.engine.numbers.links import find_links, find_signatures, host_of, valid_ipv4
from service.engine.numbers.parse import NumberInfo, NumberType, ParsedNumber, parse_number
from service.engine.schemas import BrandCategory
from service.paths import NUMBERS_DIR


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
        if (
            not re.fullmatch(r"\+?\d{3,16}", value)
            or parse_number(value).type is NumberType.INVALID
        ):
            raise ValueError(
                f"'{value}' is not a valid number: write digits only, quoted, as dialled in China "
                "(landlines keep 0 and the area code) or E.164 '+86...'"
            )
        return value

    @property
    def key(self) -> str:
        normalized = parse_number(self.number).normalized
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
    category: BrandCategory
    aliases: Annotated[tuple[Annotated[StrictStr, Field(min_length=2)], ...], Field(min_length=1)]
    app: StrictStr | None = None
    note: StrictStr | None = None
    voice: tuple[NumberEntry, ...] = ()
    sms_ports: tuple[NumberEntry, ...] = ()
    domains: tuple[DomainEntry, ...] = ()
    # True when its genuine messages also give partners' and branches' numbers and links
    # (carriers' regional sites, a tax bureau's local lines): a number or link missing from its
    # list is then no evidence, and only its own numbers and look-alikes of its domains count.
    open_lists: StrictBool = False

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


# Phone numbers in text: runs of digits (with the separators phones and people write) cut into the
# candidates `find_contacts` classifies; the context around a run says whether it is a phone at all.
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
_MAX_GROUPS = 12


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
    def load(cls, path: Path = NUMBERS_DIR, stored: Mapping[str, Any] | None = None) -> Directory:
        """Load and validate every *.yaml file under `path`; raise NumberListError on any fault.

        `stored`: the training run's parsed copy of the files (`snapshot`), read instead of the
        YAML when it is of exactly these files (service/engine/datafiles.py); still validated."""
        files = DataFiles.read(path)
        if not files.contents:
            raise NumberListError(f"{path}: no *.yaml official-number lists found")
        parsed = files.stored(stored)
        brands: dict[str, Brand] = {}
        origin: dict[str, str] = {}
        for file, content in files.contents:
            data = parsed[file.name] if parsed is not None else None
            for brand in _load_file(file, content, data):
                if brand.id in brands:
                    raise NumberListError(
                        f"{file.name}: brand '{brand.id}': duplicate brand id, already defined in "
                        f"{origin[brand.id]}; merge the two entries"
                    )
                brands[brand.id] = brand
                origin[brand.id] = file.name
        _check_cross_brand(brands, origin)
        return cls(brands, files.version)

    @staticmethod
    def snapshot(path: Path = NUMBERS_DIR) -> dict[str, Any]:
        """The number lists parsed, with their version: what the model artifact stores."""
        return DataFiles.read(path).snapshot(_parse_yaml)

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

    def _owners_for(self, parsed: ParsedNumber) -> tuple[_Owner, ...]:
        if parsed.normalized is None or parsed.type is NumberType.INTERNATIONAL:
            return ()
        owners = self._by_number.get(parsed.normalized, ())
        if not owners and parsed.detail == "area_code_plus_short" and parsed.short:
            owners = self._area_ok.get(parsed.short, ())
        return owners

    def _classify(self, raw: str) -> NumberInfo:
        parsed = parse_number(raw)
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
        return frozenset(o.brand for o in self._owners_for(parse_number(info.raw)))

    def lookalike_brand(self, info: NumberInfo) -> str | None:
        """The brand whose short code this display imitates (+95188, 0571-95188, +86 95188)."""
        parsed = parse_number(info.raw)
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
        link_spans = [(s, e) for s, e, _ in find_links(text)]
        signature_spans = find_signatures(text)
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
        for start, end, kind in find_links(text):
            raw = text[start:end]
            host = host_of(raw)
            brand, verified = (None, False) if valid_ipv4(host) else self.domain_owner(host)
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


@cache
def _yaml_loader() -> Any:
    # Imported here: a process that reads the training run's parsed copy never parses YAML, and
    # importing PyYAML cost every start ~20 ms.
    import yaml

    # libyaml's parser where PyYAML was built with it: the lists load about ten times faster.
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class DatesAsText(base):  # type: ignore[misc,valid-type]
        """SafeLoader that leaves dates as text, so pydantic reports a bad date with its brand."""

    DatesAsText.add_constructor(
        "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
    )
    return DatesAsText


def _parse_yaml(content: bytes) -> Any:
    import yaml

    try:
        return yaml.load(content, Loader=_yaml_loader())
    except yaml.YAMLError as error:
        raise NumberListError(f"not valid YAML: {error}") from error


def _load_file(file: Path, content: bytes, data: Any = None) -> list[Brand]:
    if data is None:
        try:
            data = _parse_yaml(content)
        except NumberListError as error:
            raise NumberListError(f"{file.name}: {error}") from error
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
