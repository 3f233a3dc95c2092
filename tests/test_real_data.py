"""The real corpus (model/real/): sound rows with sources, none of the held-out messages, and
splits that never put one source on both sides."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model import data
from model.fit import SEED, Dataset, cv_folds, sample_weights
from model.real_corpus import (
    EXCLUDED_SOURCES,
    add,
    check,
    fraud_type_of,
    read_rows,
    row_problems,
)
from model.real_eval import (
    Judged,
    compare_dumps,
    detail_markdown,
    grouped_folds,
    rate,
    real_quoted_split,
    spread_line,
    summarize,
    tradeoff,
    write_report,
)
from service.paths import DATA_DIR, REAL_DIR

HELDOUT_TOOL = DATA_DIR.parent / "tools" / "heldout_overlap.py"


@pytest.fixture(scope="module")
def real_examples() -> list[data.Example]:
    examples, _ = data.deduplicate(data.load_real() + data.load_real_quoted())
    return examples


def test_every_real_row_is_valid_and_keeps_its_source() -> None:
    assert check() == []


def test_a_row_without_source_or_with_an_unknown_label_is_refused() -> None:
    row = {"id": "x-1", "text": "您的验证码是1234", "label": "ham", "kind": "sms", "publisher": "p"}
    problems = row_problems(row)
    assert "missing source" in problems
    assert any(problem.startswith("label 'ham'") for problem in problems)


def test_excluded_source_families_stay_out() -> None:
    assert EXCLUDED_SOURCES.search("AutoAccountingOrg/AutoRule@abc:tests/bank.json")
    assert not any(EXCLUDED_SOURCES.search(str(e.meta.get("source"))) for e in data.load_real())


@pytest.mark.skipif(not HELDOUT_TOOL.is_file(), reason="../shared/tools is not beside the repo")
def test_no_real_row_overlaps_a_held_out_message() -> None:
    files = sorted(str(path) for path in REAL_DIR.glob("*.jsonl"))
    assert files
    result = subprocess.run(
        [sys.executable, str(HELDOUT_TOOL), *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_real_rows_load_with_their_labels_and_sources(real_examples: list[data.Example]) -> None:
    labels = {e.label for e in real_examples}
    assert labels == {"scam", "abusive", "legit", "other"}  # real_quoted's ham became other
    assert all(e.meta.get("source") for e in real_examples)
    assert {e.source for e in real_examples} == {data.REAL, data.REAL_QUOTED}


def test_rows_sharing_a_page_repository_or_publisher_share_a_group(
    real_examples: list[data.Example],
) -> None:
    groups = data.source_groups(real_examples)
    by_key: dict[str, set[str]] = defaultdict(set)
    for example, group in zip(real_examples, groups, strict=True):
        for key in data.source_keys(example):
            by_key[key].add(group)
    assert all(len(found) == 1 for found in by_key.values())
    # Issues of one GitHub repository are one source.
    issue = data.Example(
        "u",
        data.REAL,
        data.REAL,
        "other",
        real_examples[0].record,
        "x",
        {"source": "https://github.com/drakeet/SmsCodeHelper/issues/14"},
    )
    assert "repo:drakeet/smscodehelper" in data.source_keys(issue)


def _row(source: str, publisher: str, record: Any) -> data.Example:
    meta = {"source": source, "publisher": publisher}
    return data.Example(source, data.REAL, data.REAL, "legit", record, source, meta)


@pytest.mark.parametrize(
    "publisher",
    ["GitHub developer (repo not exposed)", "GitHub user", "GitHub issue spam", "unknown"],
)
def test_a_publisher_that_names_no_one_does_not_join_sources(
    real_examples: list[data.Example], publisher: str
) -> None:
    record = real_examples[0].record
    files = [
        _row(f"GitHub code, find_string index file id {n} (parser test)", publisher, record)
        for n in (101, 202)
    ]
    assert len(set(data.source_groups(files))) == 2
    # A publisher that names someone still ties two pages into one source.
    named = [
        _row(f"https://example.org/case/{n}", "Example City Police (反诈中心)", record)
        for n in (1, 2)
    ]
    assert len(set(data.source_groups(named))) == 1


def test_no_grouped_source_holds_a_tenth_of_the_real_rows(
    real_examples: list[data.Example],
) -> None:
    # A group that large is a placeholder publisher tying unrelated files, not one source.
    sizes = Counter(data.source_groups(real_examples))
    assert max(sizes.values()) < len(real_examples) / 10


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_grouped_folds_never_split_a_source(real_examples: list[data.Example], seed: int) -> None:
    dataset = Dataset(real_examples, [], {})
    folds = grouped_folds(dataset, 5, seed)
    groups = data.source_groups(real_examples)
    fold_of_group: dict[str, int] = {}
    for number, rows in enumerate(folds):
        for row in rows:
            assert fold_of_group.setdefault(groups[row], number) == number
    assert sorted(row for rows in folds for row in rows) == list(range(len(real_examples)))


def test_another_seed_deals_the_sources_into_other_folds(
    real_examples: list[data.Example],
) -> None:
    # --repeats measures fold noise only if a new seed really reshuffles the groups.
    dataset = Dataset(real_examples, [], {})
    first, second = (
        [frozenset(rows) for rows in grouped_folds(dataset, 5, seed)] for seed in (SEED, SEED + 1)
    )
    assert set(first) != set(second)


def test_the_spread_line_gives_mean_and_range_of_each_rate() -> None:
    runs = {
        f"seed {n}": {
            "scam_flagged": rate(k, 100),
            "genuine_flagged": rate(g, 100),
            "abusive_recall": rate(0, 0),
            "everyday_flagged": rate(1, 100),
        }
        for n, (k, g) in enumerate([(80, 5), (84, 9), (86, 7)])
    }
    line = spread_line(runs)
    assert "scam flagged 83.3 % (range 80.0–86.0)" in line
    assert "genuine flagged 7.0 % (range 5.0–9.0)" in line
    assert "abusive recall" not in line  # no abusive rows: no figure, not a zero


def test_the_tradeoff_reads_scam_recall_where_genuine_flags_stay_under_each_share() -> None:
    genuine = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.1, 0.2, 0.3]
    entry = tradeoff([0.9, 0.8, 0.3, 0.2], genuine)
    # 0.9 and 0.8 outrank all ten genuine rows; 0.3 outranks nine and ties one; 0.2 eight and one
    assert entry["auc"] == 0.95
    at = {p["genuine_rate"]: p for p in entry["points"]}
    assert at[0.10]["risk_cut"] == 0.3
    assert (at[0.10]["genuine_flagged"]["k"], at[0.10]["scam_flagged"]["k"]) == (1, 3)
    # no cut flags between 0 and 10 % of these genuine rows: the lowest cut that flags none
    assert at[0.03]["risk_cut"] == 0.8
    assert (at[0.03]["genuine_flagged"]["k"], at[0.03]["scam_flagged"]["k"]) == (0, 2)
    assert tradeoff([], genuine) == {}


def test_real_quoted_whole_trains_only_on_the_shipped_sources(
    real_examples: list[data.Example],
) -> None:
    # The ablation loads ChineseHarm beside the shipped sources: the real_quoted-whole row it
    # reports must still be the shipped model's, trained without it.
    kept, _ = real_quoted_split(Dataset(real_examples, [], {}))
    extra = dataclasses.replace(
        real_examples[kept[0]], uid="chineseharm:1", source=data.CHINESEHARM
    )
    dataset = Dataset([*real_examples, extra], [], {})
    train, test = real_quoted_split(dataset)
    sources = {dataset.examples[i].source for i in train}
    assert data.CHINESEHARM not in sources and data.REAL in sources
    assert {dataset.examples[i].source for i in test} == {data.REAL_QUOTED}
    train_with, _ = real_quoted_split(dataset, data.ALL_SOURCES | {data.CHINESEHARM})
    assert len(train_with) == len(train) + 1


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("注销白条/影响征信", "虚假征信"),
        ("冒充公检法/信用卡透支", "冒充公检法"),
        ("ETC认证失效", "冒充政府公共服务钓鱼"),
        ("積分兑换钓鱼", "其他诈骗"),  # Traditional 積 is not 积: tags are matched as written
        ("积分兑换钓鱼", "冒充银行钓鱼"),
        ("刷单返利", "刷单返利"),
        ("冒充平台客服(百万保障/会员/直播/快递理赔)", "冒充平台客服"),
        ("", "其他诈骗"),
    ],
)
def test_free_form_scam_tags_map_to_the_police_fraud_types(tag: str, expected: str) -> None:
    assert fraud_type_of(tag) == expected


def test_rates_carry_wilson_intervals() -> None:
    entry = rate(9, 10)
    assert entry["rate"] == 0.9
    low, high = entry["ci95"]
    assert 0.55 < low < 0.6 and 0.98 < high < 0.99
    assert rate(0, 0)["ci95"] is None


def test_inner_cv_folds_keep_each_real_source_whole(real_examples: list[data.Example]) -> None:
    labels = Dataset(real_examples, [], {}).labels
    groups = data.source_groups(real_examples)
    seen: dict[str, int] = {}
    for number, (_, validation) in enumerate(cv_folds(real_examples, labels, SEED)):
        for row in validation:
            assert seen.setdefault(groups[row], number) == number


def test_real_rows_get_their_share_of_the_training_weight(
    real_examples: list[data.Example],
) -> None:
    examples = real_examples + data.load_fbs(data.DATA_DIR)[:3000]
    is_real = np.array([e.source in data.REAL_SOURCES for e in examples])

    def real_share(share: float) -> float:
        weights = sample_weights(examples, real_share=share)
        return float(weights[is_real].sum() / weights.sum())

    assert real_share(0.1) < real_share(0.2) < real_share(0.4)
    assert 0.0 < real_share(0.1) and real_share(0.4) < 1.0


def test_source_power_weighs_a_large_sources_rows_down_and_keeps_the_real_total(
    real_examples: list[data.Example],
) -> None:
    examples = real_examples + data.load_fbs(data.DATA_DIR)[:3000]
    is_real = np.array([e.source in data.REAL_SOURCES for e in examples])
    keys = [data.source_keys(e)[0] if e.source in data.REAL_SOURCES else "" for e in examples]
    rows_of = Counter(key for key in keys if key)
    big = max(range(len(keys)), key=lambda i: rows_of[keys[i]] if keys[i] else 0)
    # a row of a one-row source with the big source's label: the class balance scales both alike
    single = next(
        i
        for i, key in enumerate(keys)
        if key and rows_of[key] == 1 and examples[i].label == examples[big].label
    )
    assert rows_of[keys[big]] >= 50
    flat = sample_weights(examples, source_power=0.0)
    even = sample_weights(examples, source_power=0.5)
    assert flat[single] == pytest.approx(flat[big])
    assert even[single] / even[big] == pytest.approx(rows_of[keys[big]] ** 0.5)
    # the real rows keep their share of the training weight, up to the class balance
    share = float(flat[is_real].sum() / flat.sum())
    assert float(even[is_real].sum() / even.sum()) == pytest.approx(share, abs=0.02)


def test_compare_dumps_judges_runs_on_the_rows_they_share(tmp_path: Path) -> None:
    def row(uid: str, label: str, category: str, risk: float) -> dict[str, Any]:
        return {"uid": uid, "label": label, "category": category, "level": "low", "risk": risk}

    before = [
        row("real:a-1", "scam", "scam", 0.9),
        row("real:a-2", "scam", "other", 0.2),
        row("real_quoted:q-1", "legit", "legit", 0.1),
        row("mudou:m-1", "other", "other", 0.05),
    ]
    # the next run holds a new row of its own and catches the second scam
    after = [*before[:1], row("real:a-2", "scam", "scam", 0.8), *before[2:]]
    after.append(row("real:new-1", "other", "scam", 0.95))
    paths = []
    for name, rows in (("before.jsonl", before), ("after.jsonl", after)):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths.append(path)
    report = compare_dumps(paths)
    assert report.startswith("4 rows in all 2 dumps")
    lines = {line.split(" | ")[0].strip("| "): line for line in report.splitlines()}
    assert "| 1 / 2 | 0 / 1 | 0 / 1 |" in lines[str(paths[0])]
    assert "| 2 / 2 | 0 / 1 | 0 / 1 |" in lines[str(paths[1])]


def test_adding_a_batch_drops_rows_that_real_quoted_already_holds(tmp_path: Path) -> None:
    quoted = [row for row in read_rows(DATA_DIR / data.REAL_QUOTED_FILE) if row.get("text")]
    new = read_rows(REAL_DIR / "gsms20.jsonl")[0]
    fields = {k: v for k, v in new.items() if k != "id"}
    harvested = tmp_path / "batch.jsonl"
    harvested.write_text(
        "\n".join(
            json.dumps(row, ensure_ascii=False)
            for row in ({**fields, "text": quoted[0]["text"]}, fields)
        )
        + "\n",
        encoding="utf-8",
    )
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    added = add("probe", harvested, real_dir=real_dir, data_dir=DATA_DIR)
    assert (added.kept, added.dropped) == (1, 1)
    assert added.why == {"already in real_quoted": 1}
    (kept,) = read_rows(real_dir / "probe.jsonl")
    assert kept["text"] == new["text"] and kept["id"] == "probe-0001"


def test_the_uci_halves_split_by_text_and_only_the_training_ham_is_trained_on() -> None:
    everything = data.load_uci(DATA_DIR)
    trained = data.load_uci_training(DATA_DIR)
    reported = data.load_uci(DATA_DIR, "report")
    texts = {e.record.text for e in trained}
    # A message that appears twice falls on one side only: the report half is never trained on.
    assert texts.isdisjoint(e.record.text for e in reported)
    assert {e.group for e in trained} == {"uci:ham"} and {e.label for e in trained} == {"other"}
    ham = [e for e in everything if e.group == "uci:ham"]
    # roughly half of the ham trains; all of the spam stays out
    assert 0.4 < len(trained) / len(ham) < 0.6
    assert {e.group for e in reported} == {"uci:ham", "uci:spam"}


def test_the_english_guard_rows_are_held_out_beside_the_mudou_ones(
    real_examples: list[data.Example],
) -> None:
    uci = data.load_uci_training(DATA_DIR)[:50]
    dataset = Dataset([*real_examples, *uci], [], {})
    folds = grouped_folds(dataset, 5, SEED)
    tested = {row for rows in folds for row in rows}
    first_uci = len(real_examples)
    assert set(range(first_uci, first_uci + len(uci))) <= tested


@pytest.mark.parametrize(
    ("sender", "shown"),
    [
        ("95588", True),
        ("+86 171 2345 6789", True),
        ("+1 (877) 748-8103", True),
        ("VM-HDFCBK-S", True),
        ("NDB ALERT", True),
        ("京东客服 (agent)", False),
        ("Taobao shop customer-service agent (店小蜜 human-human pre-sales chat, 客服)", False),
        ("hsbc@notification.hsbc.com.hk", False),
        ("fake 售后客服 (QQ)", False),
    ],
)
def test_only_what_a_phone_shows_becomes_a_real_rows_sender(sender: str, shown: bool) -> None:
    row = {"id": "x-0001", "text": "您的账单已出", "label": "legit", "sender": sender}
    (example,) = data._real_examples([("x-0001", row)], data.REAL)
    assert (example.record.sender == sender) is shown


def test_a_new_source_leaves_every_other_row_in_its_fold(
    real_examples: list[data.Example],
) -> None:
    # Stop-to-stop figures compare on the same split of the sources both stops hold.
    before = grouped_folds(Dataset(real_examples[:-1], [], {}), 5, SEED)
    after = grouped_folds(Dataset(real_examples, [], {}), 5, SEED)
    fold_before = {row: n for n, rows in enumerate(before) for row in rows}
    fold_after = {row: n for n, rows in enumerate(after) for row in rows}
    groups = data.source_groups(real_examples)
    last_group = groups[-1]
    for row, fold in fold_before.items():
        if groups[row] != last_group:
            assert fold_after[row] == fold


def test_the_report_train_writes_carries_its_own_run(
    real_examples: list[data.Example], tmp_path: Path
) -> None:
    """`make train` hands its grouped run to real_eval's writer: the Markdown and its JSON twin
    must say what that run found, here a run that flags every scam row and nothing else."""
    dataset = Dataset(real_examples, [], {})
    rows = list(range(len(real_examples)))
    labels = [e.label for e in real_examples]
    judged = Judged(
        rows=rows,
        category=labels,
        level=["high" if label == "scam" else "low" for label in labels],
        risk=[0.9 if label == "scam" else 0.1 for label in labels],
        script_hits=[False] * len(rows),
        reasons=[[] for _ in rows],
        foreign=[False] * len(rows),
        first_reader=[True] * len(rows),
    )
    summary = summarize(dataset, judged)
    out = tmp_path / "real.md"
    write_report(
        dataset, {"run": summary}, [detail_markdown("run", summary)], out, results={"folds": 5}
    )
    written = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    scams = Counter(labels)["scam"]
    assert written["folds"] == 5
    assert written["headline"]["run"]["scam_flagged"]["k"] == scams
    assert written["headline"]["run"]["genuine_flagged"]["k"] == 0
    assert f"100.0% ({scams}/{scams}" in out.read_text(encoding="utf-8")
