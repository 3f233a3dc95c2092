"""Content rules: their own examples, load-time validation, fail-closed rules, linear time."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.engine.normalize import normalize
from service.engine.rules import Rule, RuleLoadError, RuleSet
from service.paths import MODEL_PATH, PATTERNS_DIR

# Loaded once at collection so each example becomes its own test case. Examples are checked here
# one by one, so the load-time example check is switched off to get per-example reports.
RULES = RuleSet.load(check_examples=False)
MUST_MATCH = [
    pytest.param(rule, index, text, id=f"{rule.id}-{index}")
    for rule in RULES.rules
    for index, text in enumerate(rule.must_match)
]
MUST_NOT_MATCH = [
    pytest.param(rule, index, text, id=f"{rule.id}-{index}")
    for rule in RULES.rules
    for index, text in enumerate(rule.must_not_match)
]
OTP_NOTICES = [
    "验证码123456，请勿泄露给他人【招商银行】",
    "【支付宝】验证码834201，切勿告诉任何人，工作人员不会索取",
    "您的验證碼為 ６６８８２１，請勿洩露給他人，客服不會索取",
    "付款验证码431309，任何人索取验证码均为诈骗，切勿泄露！【中国银联】",
]


@pytest.mark.parametrize(("rule", "index", "text"), MUST_MATCH)
def test_rule_fires_on_its_must_match_examples(rule: Rule, index: int, text: str) -> None:
    norm = normalize(text)
    signals = {signal.id: signal for signal in RULES.signals(norm)}
    assert rule.id in signals, f"{rule.source_file}: {rule.id} must match example #{index}"
    signal = signals[rule.id]
    start, end = signal.span
    # The evidence shown to the person is the exact text they received at that span.
    assert signal.evidence
    assert text[start:end] == signal.evidence


@pytest.mark.parametrize(("rule", "index", "text"), MUST_NOT_MATCH)
def test_rule_stays_silent_on_its_must_not_match_examples(
    rule: Rule, index: int, text: str
) -> None:
    fired = {hit.rule.id for hit in RULES.hits(normalize(text))}
    assert rule.id not in fired, f"{rule.source_file}: {rule.id} fired on example #{index}"


def test_every_rule_has_enough_examples_of_both_kinds() -> None:
    thin = [
        rule.id for rule in RULES.rules if len(rule.must_match) < 3 or len(rule.must_not_match) < 3
    ]
    assert thin == []


def test_rule_set_covers_every_topic_with_unique_ids() -> None:
    files = {rule.source_file for rule in RULES.rules}
    topics = [
        path
        for path in PATTERNS_DIR.glob("*.yaml")
        if "exclusions" not in yaml.safe_load(path.read_text(encoding="utf-8"))
    ]
    assert len(files) == len(topics)
    assert len({rule.id for rule in RULES.rules}) == len(RULES.rules)
    assert {rule.category for rule in RULES.rules} == {"scam", "abusive", "legit"}


def test_default_load_checks_examples_and_gives_a_short_content_version() -> None:
    checked = RuleSet.load()
    assert checked.version == RULES.version
    assert len(checked.version) == 12
    int(checked.version, 16)


def test_version_changes_when_a_rule_file_changes(tmp_path: Path) -> None:
    shutil.copytree(PATTERNS_DIR, tmp_path, dirs_exist_ok=True)
    target = tmp_path / "fees.yaml"
    target.write_text(target.read_text(encoding="utf-8").replace("weight: 3.0", "weight: 2.9", 1))
    assert RuleSet.load(tmp_path).version != RULES.version


# --- fail-closed ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule_id",
    [
        "credential_verification_code",
        "credential_password",
        "credential_card_security",
        "fee_unfreeze",
        "fee_deposit_proof",
        "fee_advance_loan",
        "fee_negotiation_first",
        "transfer_safe_account",
        "transfer_personal_account",
    ],
)
def test_credential_fee_and_transfer_rules_are_fail_closed(rule_id: str) -> None:
    assert RULES.get(rule_id).fail_closed


def test_only_scam_rules_are_fail_closed() -> None:
    assert {rule.category for rule in RULES.rules if rule.fail_closed} == {"scam"}


@pytest.mark.parametrize("text", OTP_NOTICES)
def test_code_notice_that_warns_not_to_share_is_not_a_credential_request(text: str) -> None:
    signals = RULES.signals(normalize(text))
    assert [signal.id for signal in signals if signal.fail_closed] == []
    assert "legit_code_warning" in {signal.id for signal in signals}


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("请把手机收到的验 证 码告诉我，帮您注销校园贷", "credential_verification_code"),
        ("請繳納解凍費５００元", "fee_unfreeze"),
        ("还款请转到专员的個人账户", "transfer_personal_account"),
    ],
)
def test_obfuscated_requests_still_fail_closed(text: str, rule_id: str) -> None:
    signals = {signal.id: signal for signal in RULES.signals(normalize(text))}
    assert signals[rule_id].fail_closed
    assert signals[rule_id].source == "rule"
    assert signals[rule_id].category == "scam"
    assert signals[rule_id].explanation == RULES.get(rule_id).explanation


def test_hits_come_in_text_order() -> None:
    text = "你这个老赖，不还钱就联系你单位领导，再爆你通讯录"
    starts = [hit.start for hit in RULES.hits(normalize(text))]
    assert len(starts) >= 3
    assert starts == sorted(starts)


# --- negation: a notice that says what it will NOT ask for -----------------------------------


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("本行工作人员绝不会让您把钱转入私人账户【某银行】", "transfer_personal_account"),
        ("提醒：切勿向陌生的个人账户汇款", "transfer_personal_account"),
        ("我们从不以任何名义收取贷款保证金或解冻费", "fee_unfreeze"),
        ("客服不会以“撤销学生账户”“额度清零”为由联系您", "cancel_student_loan"),
        ("客服不会以“撤销学生账户”“额度清零”为由联系您", "clear_credit_line"),
        ("谨防有人以“百万保障到期”等借口诱导您开启屏幕共享", "remote_screen_share"),
        ("骗子常冒充客服说要注销校园贷账户", "cancel_student_loan"),
        ("“征信修复”都是骗局，别信", "credit_repair"),
        ("凡是让您把额度借出来转到别处的，都是诈骗", "transfer_borrow_and_move"),
    ],
)
def test_negated_or_warned_request_does_not_fire(text: str, rule_id: str) -> None:
    assert rule_id not in {hit.rule.id for hit in RULES.hits(normalize(text))}


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        # The cue governs a different action, in an earlier clause: the request stands.
        ("请勿挂断电话，把手机收到的验证码念给我听", "credential_verification_code"),
        ("这事别跟家里人说，先把2000元解冻费转过来", "fee_unfreeze"),
        ("不要告诉银行柜员，直接把钱汇到我给的个人账户", "transfer_personal_account"),
        # Reassurance is not negation.
        ("别担心，只要注销学生账户就不影响征信", "cancel_student_loan"),
        ("不要慌，把短信验证码发给我就能退款", "credential_verification_code"),
        # A negation that ends its clause does not reach the next one.
        ("我们不收手续费。请先缴纳500元解冻金", "fee_unfreeze"),
    ],
)
def test_request_next_to_an_unrelated_negation_still_fires(text: str, rule_id: str) -> None:
    assert rule_id in {hit.rule.id for hit in RULES.hits(normalize(text))}


@pytest.mark.parametrize(
    ("category", "negatable", "fires"),
    [
        ("scam", None, False),  # scam rules are negatable unless they opt out
        ("scam", False, True),
        ("abusive", None, True),  # "别逼我们…" is still a threat: abusive rules opt in
        ("abusive", True, False),
    ],
)
def test_negatable_defaults_by_category_and_can_be_set(
    tmp_path: Path, category: str, negatable: bool | None, fires: bool
) -> None:
    rule = _rule(
        category=category,
        fail_closed=category == "scam",
        negatable=negatable,
        must_match=["请缴纳解冻费"],
        must_not_match=["账户已解冻"],
    )
    _write(tmp_path, "negation.yaml", rule)
    rules = RuleSet.load(tmp_path)
    assert bool(rules.hits(normalize("平台不会要求您缴纳解冻费"))) is fires


def test_negation_check_stays_bounded_on_a_long_run_of_cues() -> None:
    text = "不会" * 50_000 + "请缴纳解冻费" + "请勿" * 50_000 + "，请缴纳解冻费"
    hits = {hit.rule.id: hit for hit in RULES.hits(normalize(text))}
    # The first request is governed by the cue right before it, the second (after a comma) is not.
    assert hits["fee_unfreeze"].start > 200_000


@pytest.mark.parametrize(
    "text",
    [
        "【某某钱包】新用户专享最高5万额度，打开App立即领取，回T退订",
        "【某某商城】双十一全场五折，今晚八点开抢，拒收请回复R",
    ],
)
def test_an_ad_with_an_unsubscribe_footer_gets_only_the_weakest_legit_hint(text: str) -> None:
    hits = RULES.hits(normalize(text))
    assert [hit.rule.id for hit in hits] == ["legit_unsubscribe_footer"]
    legit_weights = [rule.weight for rule in RULES.rules if rule.category == "legit"]
    assert hits[0].rule.weight == min(legit_weights)


# --- linear time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "解" * 100_000 + "a" * 100_000,
        "验证码告诉" * 20_000,
        ("请缴纳" + "x" * 11) * 10_000,
        "http://" + "1." * 50_000,
    ],
    ids=["repeated-cjk", "repeated-trigger", "near-miss-windows", "dotted-digits"],
)
def test_pathological_inputs_complete(text: str) -> None:
    norm = normalize(text)
    hits = RULES.hits(norm)
    assert all(0 <= hit.start < hit.end <= len(norm.text) for hit in hits)


def test_long_input_without_signals_has_no_hits() -> None:
    assert RULES.hits(normalize("解" * 100_000 + "a" * 100_000)) == []


# --- load failures ----------------------------------------------------------------------------


def _rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "test_unfreeze_fee",
        "category": "scam",
        "weight": 2.0,
        "fail_closed": True,
        "explanation": "正规平台不会收取解冻费",
        "explanation_en": "Real lenders never charge an unfreezing fee.",
        "patterns": ["解冻费"],
        "must_match": ["请缴纳解冻费"],
        "must_not_match": ["账户已解冻"],
    }
    rule.update(changes)
    return {key: value for key, value in rule.items() if value is not None}


def _write(directory: Path, name: str, *rules: dict[str, Any], **file_keys: Any) -> Path:
    data: dict[str, Any] = {"topic": "test", "description": "test rules", "rules": list(rules)}
    data.update(file_keys)
    path = directory / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_valid_minimal_file_loads(tmp_path: Path) -> None:
    _write(tmp_path, "one.yaml", _rule())
    rules = RuleSet.load(tmp_path)
    assert [rule.id for rule in rules.rules] == ["test_unfreeze_fee"]
    assert rules.rules[0].source_file.endswith("one.yaml")


def _write_exclusions(directory: Path, **changes: Any) -> None:
    exclusion = {
        "id": "reported_case",
        "explanation": "a news report quotes the words",
        "patterns": ["记者|据悉"],
        "must_match": ["据悉，骗子要求缴纳解冻费"],
        "must_not_match": ["请缴纳解冻费"],
    }
    exclusion.update(changes)
    data = {"topic": "exclusions", "description": "shared", "exclusions": [exclusion]}
    (directory / "exclusions.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )


def test_a_shared_exclusion_silences_every_rule_that_names_it(tmp_path: Path) -> None:
    _write_exclusions(tmp_path)
    _write(
        tmp_path,
        "fees.yaml",
        _rule(excluded_when=["reported_case"], must_not_match=["记者获悉，对方要求缴纳解冻费"]),
        _rule(id="test_deposit_fee", patterns=["保证金"], must_match=["请缴纳保证金"]),
    )
    rules = RuleSet.load(tmp_path)
    assert [rule.id for rule in rules.rules] == ["test_unfreeze_fee", "test_deposit_fee"]
    fired = {hit.rule.id for hit in rules.hits(normalize("据悉，对方要求缴纳解冻费和保证金"))}
    # Only the rule that names the exclusion is silenced by it.
    assert fired == {"test_deposit_fee"}


@pytest.mark.parametrize(
    ("exclusion", "rule", "message"),
    [
        ({}, {"excluded_when": ["quoted"]}, "unknown exclusion 'quoted' (defined: reported_case)"),
        ({"must_match": ["请缴纳解冻费"]}, {}, "exclusion 'reported_case': must_match example #1"),
        ({"must_not_match": ["据悉"]}, {}, "exclusion 'reported_case': must_not_match example"),
        ({"weight": 2}, {}, "unknown key 'weight'"),
        ({"patterns": ["记者("]}, {}, "not valid RE2"),
    ],
)
def test_a_broken_exclusion_or_reference_stops_the_load(
    tmp_path: Path, exclusion: dict[str, Any], rule: dict[str, Any], message: str
) -> None:
    _write_exclusions(tmp_path, **exclusion)
    _write(tmp_path, "fees.yaml", _rule(**rule))
    with pytest.raises(RuleLoadError, match=re.escape(message)):
        RuleSet.load(tmp_path)


@pytest.mark.parametrize(
    ("first", "second", "field", "flattened"),
    [
        (
            # `unless: [*shared, '...']` nests the anchored list in YAML; the loader flattens it.
            "    unless: &shared ['都是诈骗']\n"
            "    must_match: ['请缴纳解冻费']\n    must_not_match: ['交解冻费的都是诈骗']\n",
            "    unless: [*shared, '已退还']\n"
            "    must_match: ['请缴纳解冻费']\n    must_not_match: ['解冻费已退还']\n",
            "unless",
            ("都是诈骗", "已退还"),
        ),
        (
            # english.yaml shares its link shapes between rules: `context: [*web_link, '...']`.
            "    context: &shared ['http']\n"
            "    must_match: ['请缴纳解冻费 http://a.cn']\n    must_not_match: ['请缴纳解冻费']\n",
            "    context: [*shared, '网址']\n"
            "    must_match: ['请缴纳解冻费 网址见下', '请缴纳解冻费 http://a.cn']\n"
            "    must_not_match: ['请缴纳解冻费']\n",
            "context",
            ("http", "网址"),
        ),
    ],
)
def test_a_shared_list_and_a_rules_own_patterns_both_count(
    tmp_path: Path, first: str, second: str, field: str, flattened: tuple[str, ...]
) -> None:
    head = (
        "    category: scam\n    weight: 2.0\n    fail_closed: false\n"
        "    explanation: 解释\n    explanation_en: why\n    patterns: ['解冻费']\n"
    )
    (tmp_path / "shared.yaml").write_text(
        "topic: test\ndescription: test rules\nrules:\n"
        f"  - id: first_fee\n{head}{first}"
        f"  - id: second_fee\n{head}{second}",
        encoding="utf-8",
    )
    assert getattr(RuleSet.load(tmp_path).get("second_fee"), field) == flattened


@pytest.mark.parametrize(
    ("changes", "fix"),
    [
        ({"patterns": ["解冻(费"]}, "not valid RE2"),
        ({"patterns": ["(?<=缴纳)解冻费"]}, "not valid RE2"),
        ({"patterns": [r"\b解冻费"]}, "\\b"),
        ({"weight": 7}, "0 < weight <= 5"),
        ({"weight": 0}, "0 < weight <= 5"),
        ({"category": "spam"}, "scam, abusive, legit"),
        ({"must_match": None}, "missing key 'must_match'"),
        ({"must_not_match": []}, "must_not_match"),
        ({"patterns": []}, "patterns"),
        ({"severity": "high"}, "unknown key 'severity'"),
        ({"patterns": ["解凍費"]}, "Traditional"),
        ({"patterns": ["APP"]}, "lower-case"),
        ({"patterns": ["解冻费，"]}, "full-width"),
        ({"patterns": ["(?:解冻费)?"]}, "empty text"),
        ({"must_match": ["你好"]}, "does not fire"),
        ({"must_not_match": ["请缴纳解冻费"]}, "fires"),
        ({"near": 20}, "'near' is set but 'context' is empty"),
        ({"category": "legit"}, "cannot be fail_closed"),
        ({"context": ["贷款("]}, "context pattern #1"),
        ({"unless": ["[a-"]}, "unless pattern #1"),
    ],
)
def test_bad_rule_stops_loading_with_file_rule_and_fix(
    tmp_path: Path, changes: dict[str, Any], fix: str
) -> None:
    _write(tmp_path, "broken.yaml", _rule(**changes))
    with pytest.raises(RuleLoadError) as failure:
        RuleSet.load(tmp_path)
    message = str(failure.value)
    assert "broken.yaml" in message
    assert "rule 'test_unfreeze_fee'" in message
    assert fix in message


def test_a_file_that_is_not_yaml_is_named_with_the_parser_message(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("rules: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(RuleLoadError, match=r"(?s)broken\.yaml: not valid UTF-8 YAML \(.+\); fix"):
        RuleSet.load(tmp_path)
    (tmp_path / "broken.yaml").write_bytes("topic: 解冻费".encode("gbk"))
    with pytest.raises(RuleLoadError, match=r"broken\.yaml: not valid UTF-8 YAML"):
        RuleSet.load(tmp_path)


def test_verified_version_skips_only_the_checks_of_exactly_those_files(tmp_path: Path) -> None:
    # A serving process trusts rule files whose version the training run already checked; the
    # slightest edit to them brings every check back.
    _write(tmp_path, "broken.yaml", _rule(must_match=["你好"]))
    version = RuleSet.load(tmp_path, check_examples=False).version
    trusted = RuleSet.load(tmp_path, verified_version=version)
    assert trusted.version == version
    assert [hit.rule.id for hit in trusted.hits(normalize("请缴纳解冻费"))] == ["test_unfreeze_fee"]
    _write(tmp_path, "broken.yaml", _rule(must_match=["你好呀"]))
    with pytest.raises(RuleLoadError, match="does not fire"):
        RuleSet.load(tmp_path, verified_version=version)


def test_verified_rules_compile_on_first_use_and_find_the_same_hits() -> None:
    # A verified rule set leaves RE2 compiling to the first search (one check needs the few
    # rules its prefilter lets through); what it finds is what the checked rule set finds.
    checked = RuleSet.load()
    trusted = RuleSet.load(verified_version=checked.version)
    regexes = [item.pattern for item in trusted._compiled]
    assert all(regex._compiled is None for regex in regexes)
    examples = [example for rule in checked.rules for example in rule.must_match]
    examples += [example for rule in checked.rules for example in rule.must_not_match]
    for example in examples:
        norm = normalize(example)
        assert trusted.hits(norm) == checked.hits(norm), example
    trusted.compile_all()  # what a server does before its workers fork
    assert all(regex._compiled is not None for regex in regexes)


def test_shipped_model_vouches_for_the_shipped_rules() -> None:
    # The training run loads the rules with every check and records their version in the
    # manifest; a stale record would silently turn the start-up checks back on.
    manifest = json.loads(MODEL_PATH.with_suffix(".json").read_text(encoding="utf-8"))
    assert manifest["rules_version"] == RuleSet.load(check_examples=False).version


def test_a_stored_copy_is_read_only_for_exactly_the_files_it_was_made_from(tmp_path: Path) -> None:
    _write(tmp_path, "fees.yaml", _rule())
    stored = RuleSet.snapshot(tmp_path)
    from_copy = RuleSet.load(tmp_path, stored=stored)
    assert from_copy.rules == RuleSet.load(tmp_path).rules
    assert from_copy.version == stored["version"]
    # An edit changes the version: the copy is ignored and the YAML read (and checked) again.
    _write(tmp_path, "fees.yaml", _rule(id="test_edited_fee"))
    assert [rule.id for rule in RuleSet.load(tmp_path, stored=stored).rules] == ["test_edited_fee"]
    _write(tmp_path, "fees.yaml", _rule(must_match=["你好"]))
    with pytest.raises(RuleLoadError, match="does not fire"):
        RuleSet.load(tmp_path, stored=stored)


def test_the_shipped_model_carries_the_shipped_rule_and_number_files() -> None:
    # Serving reads the artifact's parsed copy instead of the YAML (~60 ms of every start); a
    # copy of other files would silently bring the YAML parsing back.
    from service.engine.numbers.directory import Directory
    from service.engine.pipeline import Analyzer

    model = Analyzer.load().model
    assert model.data_files["rules"] == RuleSet.snapshot()
    assert model.data_files["numbers"] == Directory.snapshot()


def test_duplicate_id_across_files_names_both_files(tmp_path: Path) -> None:
    _write(tmp_path, "a_first.yaml", _rule())
    _write(tmp_path, "b_second.yaml", _rule())
    with pytest.raises(RuleLoadError) as failure:
        RuleSet.load(tmp_path)
    message = str(failure.value)
    assert message.startswith(str(tmp_path / "b_second.yaml"))
    assert "rule 'test_unfreeze_fee'" in message
    assert "a_first.yaml" in message
    assert "duplicate id" in message


@pytest.mark.parametrize(
    ("content", "fix"),
    [
        ("topic: [unclosed\n", "YAML"),
        ("- just a list\n", "mapping"),
        ("topic: t\ndescription: d\n", "missing key 'rules'"),
        ("topic: t\ndescription: d\nrules: []\n", "rules"),
        ("topic: t\ndescription: d\nowner: me\nrules: [{id: x}]\n", "unknown key 'owner'"),
    ],
)
def test_bad_file_structure_names_the_file(tmp_path: Path, content: str, fix: str) -> None:
    (tmp_path / "shape.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(RuleLoadError) as failure:
        RuleSet.load(tmp_path)
    assert str(failure.value).startswith(str(tmp_path / "shape.yaml"))
    assert fix in str(failure.value)


def test_rule_without_id_is_named_by_position(tmp_path: Path) -> None:
    _write(tmp_path, "noid.yaml", _rule(), _rule(id=None))
    with pytest.raises(RuleLoadError, match=r"noid\.yaml: rule #2 \(no id\): missing key 'id'"):
        RuleSet.load(tmp_path)


def test_bad_id_format_is_explained(tmp_path: Path) -> None:
    _write(tmp_path, "ids.yaml", _rule(id="Fee-Unfreeze"))
    with pytest.raises(RuleLoadError, match="snake_case"):
        RuleSet.load(tmp_path)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError, match="no rule files"):
        RuleSet.load(tmp_path)
