"""Content rules: YAML data files in rules/patterns/ turned into typed, frozen, checked objects.

Each file holds one topic (fees, credentials, impersonation ...). A rule has a stable id, a
category, a weight (a hand-set prior that the model engineer may later refit from data), a short
zh-CN explanation, RE2 patterns over *normalised* text, optional context and exclusion patterns,
and examples it must and must not match. A reason many rules share not to fire (the words are
quoted in a news report or an anti-fraud warning) is written once, in a file of `exclusions`
with examples of its own, and rules name it in `excluded_when`. Everything is validated when the
rules load; a bad file stops start-up with the file, the rule id and what to fix.

Patterns run on google-re2 (`import re2`): matching is linear in the input whatever the pattern,
so one rule can never hang a worker.
"""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import opencc
import re2
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from service.engine.datafiles import DataFiles
from service.engine.normalize import Normalized, normalize
from service.engine.prefilter import LiteralPrefilter, literals_text, stored_literals
from service.engine.schemas import Signal
from service.paths import PATTERNS_DIR, REPO_ROOT, RULE_LITERALS_PATH

RuleCategory = Literal["scam", "abusive", "legit"]
NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{2,63}$")]

# A rule whose pattern hits very often (e.g. "验证码" in a long text) only inspects this many
# candidate hits for its context window, so the work per rule stays bounded.
_MAX_CANDIDATES = 64
# Largest `near` window: context further away than this is "anywhere in the message".
_MAX_NEAR = 200
# A negation cue governs a hit only if it starts at most this many characters before the hit.
_NEGATION_REACH = 30
# A "以…为由/名义" frame around a hit spans at most this many characters.
_FRAME_REACH = 40
# ... and governs a hit that follows it this closely ("…为由要求您" + hit).
_FRAME_GAP = 4

# Clause breaks in normalised text (NFKC has already turned "，！？；" into ",!?;"). A cue never
# governs across one: in "请勿挂断电话,把验证码报给我" the request after the comma stands.
_CLAUSE_BREAK = re2.compile(r"[,。!?;\n【】]")
# Group 1: phrases that start like a negation but do not negate what follows, so a real request
# after them still counts: reassurance ("别担心", "不要怕"), "stay on the line", and a scammer's
# demand for secrecy ("不要告诉家人"). Group 2: the cues that negate or warn.
_NEGATION_CUES = re2.compile(
    "((?:不要|不用|别|千万别|千万不要|请勿|切勿|勿)(?:担心|害怕|怕|慌|着急|急|紧张|犹豫|错过|耽误|"
    "拖延|再拖|多想|多问|挂断|挂机|挂电话|关机|离开|走开|声张|乱说|外传)"
    "|(?:不要|不能|切勿|请勿|不得|不许|千万别|千万不要)(?:告诉|告知|透露给?|让|跟|和|对)[^,。!?;]{0,4}?"
    "(?:家人|家里人?|亲友|亲人|朋友|父母|爸妈|老公|老婆|丈夫|妻子|同事|银行|柜员|柜台|警察|民警|"
    "派出所|公安))"
    "|(不会|绝不会|从不|从未|不要|请勿|切勿|勿|无需|无须|不需要?|不必|不用|免收|不收取?|千万别|谨防|警惕|提防|防范|严禁|禁止|不得|冒充|假冒|"
    "仿冒|诱导|骗取|套取|凡是?|不存在|并不存在|从未设立|没有设立|对方(?:会)?(?:称|说|以)|骗子(?:会)?(?:称|说)|不法分子|诈骗分子|犯罪分子|要求(?:客户|用户|受害人|事主|群众|市民|消费者))"
)
# "以“注销学生账户”“清空额度”等名义/为由": the script being warned about, named inside a frame.
# The characters after 以 rule out 以免, 以便, 以上, 以下, 以及, 以后, 以内, 以往, 以至.
_WARNING_FRAME = re2.compile(
    r"以[^免便上下及后内往至致,。!?;\n][^,。!?;\n]{0,38}?(?:为由|为名|名义|理由|借口|幌子)"
)
# "…的都是诈骗" right after the hit, in the same clause; or the hit names a kind of scam, as in
# an anti-fraud warning: "“注销校园贷”诈骗高发", "刷流水类骗局".
_CALLED_A_SCAM = re2.compile(
    r"^(?:[^,。!?;\n]{0,12}?(?:的|者|”|\"),?(?:都|均|全|一律|皆|一定|统统)?(?:是|为|属于?|系)"
    r"(?:电信|网络)*(?:诈骗|骗子|骗局)"
    r"|[^,。!?;\n]{0,3}?(?:”|\"|」|』)?(?:等|类|型|式|之类的?)?(?:电信|网络)?(?:诈骗|骗局|骗术))"
)


def _negated(text: str, start: int, end: int) -> bool:
    """Is the hit text[start:end] negated or named as a warning rather than asked for?

    It is when any of these holds:
    - a negation/warning cue (不会, 请勿, 切勿, 谨防, 冒充, 诱导, 凡是 ...) starts within
      `_NEGATION_REACH` characters before the hit (not counting a "以…名义" frame in between),
      or inside it after its first character, and no clause break (, 。 ! ? ; 【 】) lies
      between the cue and the hit (the end of the hit, for a cue inside it);
    - the hit starts inside a "以 … 为由/名义/借口" frame of the same clause, or follows one
      within `_FRAME_GAP` characters ("以…等理由要求" + hit);
    - the hit is followed in its clause by "的都是诈骗" (or 均为诈骗, 是骗子 ...).
    Reassurance and secrecy phrases ("别担心", "请勿挂断", "不要告诉家人") are not cues. The work is
    bounded by the reach constants, whatever the length of the text.
    """
    low = max(0, start - _NEGATION_REACH)
    frames_from = max(0, start - _FRAME_REACH - _NEGATION_REACH)
    for frame in _WARNING_FRAME.finditer(text, frames_from, end + _FRAME_REACH):
        if frame.start() < start < frame.end():
            return True
        if 0 <= start - frame.end() <= _FRAME_GAP and not _CLAUSE_BREAK.search(
            text, frame.end(), start
        ):
            # "以“利率过高”等理由要求共享屏幕": a script described, never how a scammer talks.
            return True
        if low <= frame.end() <= start:
            # "不会以“A”“B”等名义要求您…": the cue's reach starts before the frame it governs.
            low = max(0, min(low, frame.start() - _NEGATION_REACH))
    for cue in _NEGATION_CUES.finditer(text, low, end):
        if cue.group(2) is None or cue.start() == start:
            continue
        # A cue before the hit must reach its start; a cue inside the hit must reach its end.
        reach_to = start if cue.end() <= start else end
        if _CLAUSE_BREAK.search(text, cue.end(), reach_to) is None:
            return True
    return _CALLED_A_SCAM.search(text[end : end + 24]) is not None


# How to fix each kind of validation failure, keyed by field name or pydantic error type.
_FIELD_HINTS: dict[str, str] = {
    "id": "use a stable snake_case id: lower-case ASCII letters, digits and '_', 3-64 chars",
    "category": "use one of: scam, abusive, legit",
    "weight": "use a number with 0 < weight <= 5 (a hand-set prior)",
    "explanation": "write a short zh-CN sentence the person will read",
    "explanation_en": "write the same explanation in English",
    "patterns": "give a non-empty list of RE2 regexes over normalised text",
    "must_match": "give a non-empty list of texts this rule must fire on",
    "must_not_match": "give a non-empty list of texts this rule must not fire on",
    "fail_closed": "true if the message asks for a code, password, fee or transfer, else false",
    "near": "use a whole number of characters between 1 and 200, or leave it out",
    "negatable": "true or false; leave it out for the default (true for scam rules only)",
    "excluded_when": "list ids of shared exclusions (rules/patterns/exclusions.yaml)",
}


class RuleLoadError(ValueError):
    """A rule file is invalid. The message names the file, the rule id and what to fix."""


class Rule(BaseModel):
    """One content rule, exactly as written in its file (patterns as source strings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: RuleId
    category: RuleCategory
    weight: Annotated[float, Field(gt=0, le=5)]
    explanation: NonEmptyText
    explanation_en: NonEmptyText
    patterns: Annotated[tuple[NonEmptyText, ...], Field(min_length=1)]
    # At least one context pattern must also match: within `near` characters of the hit when
    # `near` is set, anywhere in the message otherwise.
    context: tuple[NonEmptyText, ...] = ()
    near: Annotated[int, Field(ge=1, le=_MAX_NEAR)] | None = None
    # If any `unless` pattern matches anywhere in the message, the rule does not fire.
    unless: tuple[NonEmptyText, ...] = ()
    # Shared exclusions (an `exclusions:` file) that act as more `unless` patterns: one place
    # for a reason many rules share not to fire, such as a news report quoting the words.
    excluded_when: tuple[RuleId, ...] = ()
    # True: the message asks for a code, password, fee or transfer, so it can never be legit.
    fail_closed: bool
    # True: a hit governed by a negation or warning cue ("平台不会要求您…", "请勿…", "谨防…") does
    # not count. Unset means true for scam rules (genuine notices name what they never ask for)
    # and false for abusive and legit rules (threats say "别逼我们…", code notices say "请勿泄露").
    negatable: bool | None = None
    subtype: NonEmptyText | None = None
    must_match: Annotated[tuple[NonEmptyText, ...], Field(min_length=1)]
    must_not_match: Annotated[tuple[NonEmptyText, ...], Field(min_length=1)]
    # Set by the loader, never by the file.
    source_file: str = ""

    @field_validator("unless", "context", mode="before")
    @classmethod
    def _flatten_shared_lists(cls, value: Any) -> Any:
        """A file shares one `unless` or `context` list through a YAML anchor; a rule that needs
        one more pattern lists the alias beside it (`- *anti_fraud_warning`), which YAML nests."""
        if not isinstance(value, list):
            return value
        flat: list[Any] = []
        for item in value:
            flat.extend(item if isinstance(item, list) else [item])
        return flat


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: NonEmptyText
    description: NonEmptyText
    rules: Annotated[list[Any], Field(min_length=1)]


class Exclusion(BaseModel):
    """A reason several rules share not to fire, written once: rules name it in
    `excluded_when`, and its patterns count as theirs under `unless`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: RuleId
    explanation: NonEmptyText
    patterns: Annotated[tuple[NonEmptyText, ...], Field(min_length=1)]
    must_match: Annotated[tuple[NonEmptyText, ...], Field(min_length=1)]
    must_not_match: Annotated[tuple[NonEmptyText, ...], Field(min_length=1)]


class _ExclusionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: NonEmptyText
    description: NonEmptyText
    exclusions: Annotated[list[Any], Field(min_length=1)]


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired, with the normalised span [start, end) of its first qualifying hit."""

    rule: Rule
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: Rule
    pattern: Any  # re2._Regexp: all patterns as one alternation
    context: Any | None
    unless: Any | None
    negatable: bool

    def find(self, text: str) -> tuple[int, int] | None:
        # The pattern first: most rules the prefilter lets through do not match, and then one
        # scan settles it (the order of these checks does not change the result).
        matches = self.pattern.finditer(text)
        first = next(matches, None)
        if first is None:
            return None
        if self.unless is not None and self.unless.search(text) is not None:
            return None
        near = self.rule.near
        if self.context is not None and near is None and self.context.search(text) is None:
            return None
        for count, match in enumerate(itertools.chain((first,), matches)):
            if count >= _MAX_CANDIDATES:
                break
            start, end = match.span()
            if self.context is not None and near is not None:
                window = text[max(0, start - near) : end + near]
                if self.context.search(window) is None:
                    continue
            if self.negatable and _negated(text, start, end):
                continue
            return start, end
        return None


Fail = Callable[[str], NoReturn]


@lru_cache(maxsize=1)
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


# Memory budget of each rule regex (RE2's default is 8 MiB). Every rule's regexes keep a lazily
# built DFA cache in every worker, which grows to the budget on long texts: ~59 MB per worker over
# one pass of the corpus with the default, ~29 MB with 1 MiB, ~7 MB with 256 KiB. At 256 KiB the
# corpus scores at the same speed (bench p50 and batch unchanged, p99 +0.1 ms) and 5,000-character
# messages take ~40 % longer in the rules, where RE2 restarts its cache more often (results are the
# same). The largest rule's alternation compiles within it (loading fails loudly if one did not).
_RE2_MAX_MEM = 1 << 18


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # errors are raised and reported with the file and rule id
    options.max_mem = _RE2_MAX_MEM
    return options


_OPTIONS = _re2_options()
_WORD_BOUNDARY = re.compile(r"(?<!\\)(?:\\\\)*\\[bB]")
_ESCAPES = re.compile(r"\\(?:[pP]\{[^}]*\}|.)")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _pattern_problem(pattern: str) -> str | None:
    """What is wrong with one pattern's source, before RE2 sees it (None when fine)."""
    if _WORD_BOUNDARY.search(pattern):
        return (
            "uses \\b or \\B, which never works on Chinese (every CJK character is a word "
            "character); anchor on the neighbouring words or punctuation instead"
        )
    if unicodedata.normalize("NFKC", pattern) != pattern:
        folded = unicodedata.normalize("NFKC", pattern)
        return (
            "contains full-width or compatibility characters that never occur in normalised "
            f"text; write {folded!r}"
        )
    if re.search(r"[A-Z]", _ESCAPES.sub("", pattern)):
        return (
            "contains upper-case letters but normalised text is lower-case; "
            f"write {pattern.lower()!r}"
        )
    simplified = _to_simplified().convert(pattern)
    if simplified != pattern:
        return (
            "contains Traditional characters but normalised text is Simplified; "
            f"write {simplified!r}"
        )
    return None


def _compile(source: str, what: str, fail: Fail) -> Any:
    problem = _pattern_problem(source)
    if problem:
        fail(f"{what} {source!r} {problem}")
    try:
        compiled = re2.compile(source, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        fail(
            f"{what} {source!r} is not valid RE2 syntax ({detail}); RE2 has no look-around "
            "or back-references, see https://github.com/google/re2/wiki/Syntax"
        )
    if compiled.search("") is not None:
        fail(f"{what} {source!r} matches empty text, so it would fire on every message")
    return compiled


def _alternation(
    sources: tuple[str, ...], what: str, fail: Fail, *, verified: bool = False
) -> Any | None:
    if not sources:
        return None
    if not verified:
        for index, source in enumerate(sources, start=1):
            _compile(source, f"{what} #{index}", fail)
    combined = "|".join(f"(?:{source})" for source in sources)
    if verified:
        # Files the training run already compiled: compiled on first use instead, as one check
        # needs only the few rules its prefilter lets through (RE2 compiling all of them took
        # ~100 ms of every start); servers compile all before forking (`RuleSet.compile_all`).
        return _Deferred(combined)
    try:
        return re2.compile(combined, _OPTIONS)
    except re2.error:
        fail(f"{what} together are too large for RE2; split the rule")
    return None


class _Deferred:
    """An RE2 regex compiled on its first search (a race compiles it twice, harmlessly)."""

    __slots__ = ("_compiled", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled: Any = None

    def compiled(self) -> Any:
        if self._compiled is None:
            self._compiled = re2.compile(self._source, _OPTIONS)
        return self._compiled

    def search(self, text: str) -> Any:
        return self.compiled().search(text)

    def finditer(self, text: str) -> Any:
        return self.compiled().finditer(text)


def _describe_validation(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    fields = (model or Rule).model_fields
    parts = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        location = ".".join(str(part) for part in item["loc"]) or "rule"
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(name for name in fields if name != "source_file")
            parts.append(f"unknown key '{location}': remove it or fix its spelling ({allowed})")
            continue
        if item["type"] == "missing":
            hint = _FIELD_HINTS.get(field, "add it")
            parts.append(f"missing key '{location}': {hint}")
            continue
        hint = _FIELD_HINTS.get(field)
        got = f" (got {item['input']!r})" if not isinstance(item["input"], dict | list) else ""
        parts.append(f"{location}: {item['msg']}{got}" + (f"; {hint}" if hint else ""))
    return "; ".join(parts)


def _compile_rule(
    rule: Rule,
    fail: Fail,
    exclusions: Mapping[str, Exclusion],
    *,
    verified: bool = False,
) -> _CompiledRule:
    if rule.near is not None and not rule.context:
        fail("'near' is set but 'context' is empty; add context patterns or remove 'near'")
    if rule.fail_closed and rule.category == "legit":
        fail("a legit rule cannot be fail_closed; set fail_closed: false")
    unless = rule.unless
    for name in rule.excluded_when:
        if name not in exclusions:
            known = ", ".join(sorted(exclusions)) or "none"
            fail(f"excluded_when names unknown exclusion '{name}' (defined: {known})")
        unless += exclusions[name].patterns
    return _CompiledRule(
        rule=rule,
        pattern=_alternation(rule.patterns, "pattern", fail, verified=verified),
        context=_alternation(rule.context, "context pattern", fail, verified=verified),
        unless=_alternation(unless, "unless pattern", fail, verified=verified),
        negatable=rule.category == "scam" if rule.negatable is None else rule.negatable,
    )


def _check_examples(
    find: Callable[[str], Any],
    must_match: tuple[str, ...],
    must_not_match: tuple[str, ...],
    fail: Fail,
) -> None:
    """A rule or exclusion that misses its own must_match examples (or hits a must_not_match)
    is broken. `find` returns None on an example's normalised text where it does not fire."""
    for index, example in enumerate(must_match, start=1):
        if find(normalize(example).text) is None:
            fail(f"must_match example #{index} {example!r} does not fire; fix the patterns")
    for index, example in enumerate(must_not_match, start=1):
        if find(normalize(example).text) is not None:
            fail(f"must_not_match example #{index} {example!r} fires; tighten the patterns")


class _NotYaml(ValueError):
    pass


def _parse_yaml(raw: bytes) -> Any:
    # Imported here: a process that reads the training run's parsed copy never parses YAML, and
    # importing PyYAML cost every start ~20 ms.
    import yaml

    try:
        # libyaml's safe parser where PyYAML was built with it.
        return yaml.load(raw.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _NotYaml(str(exc)) from exc


def _file_data(path: Path, raw: bytes, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        data = stored[path.name] if stored is not None else _parse_yaml(raw)
    except _NotYaml as exc:
        raise RuleLoadError(
            f"{_display(path)}: not valid UTF-8 YAML ({exc}); fix the syntax"
        ) from None
    if not isinstance(data, dict):
        raise RuleLoadError(
            f"{_display(path)}: must be a mapping with keys topic, description and rules "
            "(or exclusions)"
        )
    return data


def _load_exclusions(
    path: Path, data: dict[str, Any], found: dict[str, Exclusion], check_examples: bool
) -> None:
    """Validate an exclusions file into `found`, checking each one against its examples."""
    shown = _display(path)
    try:
        parsed = _ExclusionFile.model_validate(data)
    except ValidationError as exc:
        raise RuleLoadError(
            f"{shown}: {_describe_validation(exc, _ExclusionFile)}; an exclusions file has keys "
            "topic, description, exclusions"
        ) from None
    for position, raw in enumerate(parsed.exclusions, start=1):
        name = raw.get("id") if isinstance(raw, dict) else None
        label = f"exclusion '{name}'" if isinstance(name, str) else f"exclusion #{position}"

        def fail(message: str, label: str = label) -> NoReturn:
            raise RuleLoadError(f"{shown}: {label}: {message}")

        try:
            exclusion = Exclusion.model_validate(raw)
        except ValidationError as exc:
            fail(_describe_validation(exc, Exclusion))
        if exclusion.id in found:
            fail("duplicate id; give one of them a new id")
        if check_examples:
            regex = _alternation(exclusion.patterns, "pattern", fail)
            _check_examples(
                regex.search,
                exclusion.must_match,
                exclusion.must_not_match,
                fail,
            )
        found[exclusion.id] = exclusion


def _load_file(
    path: Path,
    data: dict[str, Any],
    seen: dict[str, str],
    exclusions: Mapping[str, Exclusion],
    check_examples: bool,
    verified: bool,
) -> list[_CompiledRule]:
    shown = _display(path)

    def file_fail(message: str) -> NoReturn:
        raise RuleLoadError(f"{shown}: {message}")

    try:
        parsed = _RuleFile.model_validate(data)
    except ValidationError as exc:
        file_fail(_describe_validation(exc) + "; a rule file has keys topic, description, rules")

    compiled_rules = []
    for position, raw in enumerate(parsed.rules, start=1):
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        label = f"rule '{rule_id}'" if isinstance(rule_id, str) else f"rule #{position} (no id)"

        def fail(message: str, label: str = label) -> NoReturn:
            raise RuleLoadError(f"{shown}: {label}: {message}")

        if not isinstance(raw, dict):
            fail("must be a mapping of keys (id, category, weight, ...)")
        if "source_file" in raw:
            fail("unknown key 'source_file': the loader sets it; remove it")
        try:
            rule = Rule.model_validate({**raw, "source_file": shown})
        except ValidationError as exc:
            fail(_describe_validation(exc))
        if rule.id in seen:
            fail(f"duplicate id, already defined in {seen[rule.id]}; give one of them a new id")
        seen[rule.id] = shown
        compiled = _compile_rule(rule, fail, exclusions, verified=verified)
        if check_examples and not verified:
            _check_examples(
                compiled.find,
                rule.must_match,
                rule.must_not_match,
                fail,
            )
        compiled_rules.append(compiled)
    return compiled_rules


class RuleSet:
    """All content rules, loaded once at start-up and shared read-only between requests."""

    def __init__(self, compiled: tuple[_CompiledRule, ...], version: str) -> None:
        self._compiled = compiled
        self.version = version
        self.rules: tuple[Rule, ...] = tuple(item.rule for item in compiled)
        self._by_id = {rule.id: rule for rule in self.rules}
        # Which rules can fire, from the literal words their patterns need (prefilter.py): one
        # set intersection per text instead of one regex scan per rule.
        self._prefilter = LiteralPrefilter(
            [item.rule.patterns for item in compiled], stored_literals()
        )

    def candidates(self, text: str) -> tuple[_CompiledRule, ...]:
        """The rules whose patterns can match somewhere in `text` (every rule that does, and
        some that turn out not to), in file order."""
        return tuple(self._compiled[index] for index in self._prefilter.candidates(text))

    @classmethod
    def load(
        cls,
        path: Path = PATTERNS_DIR,
        *,
        check_examples: bool = True,
        verified_version: str | None = None,
        stored: Mapping[str, Any] | None = None,
    ) -> RuleSet:
        """Load every `*.yaml` file under `path`, validating it all; raises RuleLoadError.

        With `check_examples` (the default) each rule must also fire on its must_match examples
        and stay silent on its must_not_match ones, so a broken edit cannot reach production.
        `verified_version` is the version of rule files that already passed every check (the
        model's training run checks them and records it): files with exactly that content skip
        the per-pattern and example checks, which cost a third of start-up and ~25 MB of regex
        state in every server process. Any edit changes the version and brings the checks back.
        `stored`: the training run's parsed copy of the files (`snapshot`), read instead of the
        YAML when it is of exactly these files (service/engine/datafiles.py).
        """
        files = DataFiles.read(path)
        if not files.contents:
            raise RuleLoadError(f"{_display(path)}: no rule files (*.yaml) found; check the path")
        verified = verified_version is not None and verified_version == files.version
        parsed = files.stored(stored)
        data = [(file, _file_data(file, raw, parsed)) for file, raw in files.contents]
        exclusion_files = [(file, content) for file, content in data if "exclusions" in content]
        rule_files = [(file, content) for file, content in data if "exclusions" not in content]
        # Exclusions first: a rule in any file may name one.
        exclusions: dict[str, Exclusion] = {}
        for file, content in exclusion_files:
            _load_exclusions(file, content, exclusions, check_examples and not verified)
        seen: dict[str, str] = {}
        compiled: list[_CompiledRule] = []
        for file, content in rule_files:
            compiled.extend(_load_file(file, content, seen, exclusions, check_examples, verified))
        return cls(tuple(compiled), files.version)

    @staticmethod
    def snapshot(path: Path = PATTERNS_DIR) -> dict[str, Any]:
        """The rule files parsed, with their version: what the model artifact stores."""
        return DataFiles.read(path).snapshot(_parse_yaml)

    def compile_all(self) -> RuleSet:
        """Compile every deferred regex now (a server does this once, before its workers fork,
        so they share the compiled regexes instead of each compiling its own)."""
        for item in self._compiled:
            for regex in (item.pattern, item.context, item.unless):
                if isinstance(regex, _Deferred):
                    regex.compiled()
        return self

    def get(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]

    def hits(self, norm: Normalized, *, prefilter: bool = True) -> list[RuleHit]:
        """Every rule that fires on the normalised text, in order of position in the text.

        `prefilter=False` runs every rule's full check (the reference the tests compare with).
        """
        found = []
        rules = self.candidates(norm.text) if prefilter else self._compiled
        for item in rules:
            span = item.find(norm.text)
            if span is not None:
                found.append(RuleHit(item.rule, span[0], span[1]))
        found.sort(key=lambda hit: (hit.start, -hit.rule.weight))
        return found

    def signals(self, norm: Normalized) -> list[Signal]:
        """The hits as contract signals, with evidence and spans in the ORIGINAL text."""
        return [
            Signal(
                id=hit.rule.id,
                source="rule",
                category=hit.rule.category,
                weight=hit.rule.weight,
                evidence=norm.evidence(hit.start, hit.end),
                span=norm.span(hit.start, hit.end),
                explanation=hit.rule.explanation,
                explanation_en=hit.rule.explanation_en,
                fail_closed=hit.rule.fail_closed,
            )
            for hit in self.hits(norm)
        ]


def write_literals_file(patterns_dir: Path = PATTERNS_DIR, path: Path = RULE_LITERALS_PATH) -> int:
    """Write the prefilter's clauses of every pattern of the rules in `patterns_dir`
    (service/data/rule_literals.json); returns how many patterns."""
    ruleset = RuleSet.load(patterns_dir, check_examples=False)
    patterns = {p for rule in ruleset.rules for p in rule.patterns}
    path.write_text(literals_text(patterns), encoding="utf-8")
    return len(patterns)


if __name__ == "__main__":
    count = write_literals_file()
    print(f"wrote {RULE_LITERALS_PATH} ({count} patterns)", file=sys.stderr)
