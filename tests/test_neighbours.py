"""Meaning neighbours: the real rows nearest in meaning move the model's scam odds toward how
they were labelled, never a message with nothing to read, never by the batch it came in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from model import data
from model.fit import sentence_embeddings
from model.real_eval import fold_of_group
from service.engine.neighbours import Neighbours, Settings
from service.engine.pipeline import Analyzer
from service.engine.schemas import CATEGORIES, parse_record

SCAM = CATEGORIES.index("scam")
# Every seventh source group is held out: the index never saw its pages.
HELD_OUT_FOLDS = 7


@pytest.fixture(scope="module")
def split() -> tuple[Neighbours, np.ndarray, np.ndarray]:
    """An index of the real rows of six source folds in seven; the seventh fold's embeddings and
    labels (scam or not) to query it with."""
    examples, _ = data.deduplicate(data.load_real() + data.load_real_quoted())
    examples = [e for e in examples if e.record.text]
    groups = data.source_groups(examples)
    held = np.array([fold_of_group(g, HELD_OUT_FOLDS, 0) == 0 for g in groups])
    vectors = sentence_embeddings([e.record.text for e in examples])
    scam = np.array([e.label == "scam" for e in examples])
    index = Neighbours.build(list(vectors[~held]), scam[~held])
    return index, vectors[held], scam[held]


def test_neighbours_from_other_sources_tell_scams_from_the_rest(
    split: tuple[Neighbours, np.ndarray, np.ndarray],
) -> None:
    index, vectors, scam = split
    shares = np.array([index.scam_share(vector) for vector in vectors])
    assert scam.sum() > 100 and (~scam).sum() > 100
    # Stop 59's probe: 0.91 over five folds. Far above chance on pages the index never saw.
    assert roc_auc_score(scam, shares) > 0.85


def test_a_scams_neighbours_raise_its_scam_odds_and_a_notices_lower_them(
    split: tuple[Neighbours, np.ndarray, np.ndarray],
) -> None:
    index, vectors, scam = split
    shares = np.array([index.scam_share(vector) for vector in vectors])
    row = np.array([0.1, 0.2, 0.3, 0.4])
    proba = np.tile(row, (len(vectors), 1))
    adjusted = index.adjust(proba, list(vectors), SCAM)
    assert np.allclose(adjusted.sum(axis=1), 1.0)
    raised = shares > 0.5
    assert np.all(adjusted[raised, SCAM] > row[SCAM])
    assert np.all(adjusted[~raised, SCAM] < row[SCAM])
    assert np.median(adjusted[scam, SCAM]) > np.median(adjusted[~scam, SCAM])
    # The other categories keep their proportions to one another.
    others = [c for c in range(len(CATEGORIES)) if c != SCAM]
    kept = adjusted[:, others] / adjusted[:, others].sum(axis=1, keepdims=True)
    assert np.allclose(kept, row[others] / row[others].sum())


def test_a_message_with_nothing_to_read_is_left_as_the_model_read_it(
    split: tuple[Neighbours, np.ndarray, np.ndarray],
) -> None:
    index, vectors, _ = split
    proba = np.array([[0.1, 0.6, 0.2, 0.1], [0.3, 0.3, 0.3, 0.1]])
    zero = np.zeros(vectors.shape[1], dtype=np.float32)
    assert index.scam_share(zero) == 0.5
    assert np.array_equal(index.adjust(proba, [None, zero], SCAM), proba)


def test_a_message_near_no_row_moves_little(
    split: tuple[Neighbours, np.ndarray, np.ndarray],
) -> None:
    """The prior's even share outweighs neighbours that are all far away."""
    index, vectors, _ = split
    far = Neighbours(index.vectors, index.scam, index.projection, Settings(prior=1e6))
    assert abs(far.scam_share(vectors[0]) - 0.5) < 1e-3


def test_a_batch_reads_each_message_as_it_reads_it_alone(
    split: tuple[Neighbours, np.ndarray, np.ndarray],
) -> None:
    index, vectors, _ = split
    proba = np.tile([0.4, 0.3, 0.2, 0.1], (50, 1))
    together = index.adjust(proba, list(vectors[:50]), SCAM)
    alone = np.vstack([index.adjust(proba[i : i + 1], [vectors[i]], SCAM) for i in range(50)])
    assert np.array_equal(together, alone)


def test_the_index_keeps_no_empty_rows_and_round_trips_its_arrays(
    split: tuple[Neighbours, np.ndarray, np.ndarray],
) -> None:
    index, vectors, _ = split
    with_empty = Neighbours.build([*vectors[:20], np.zeros(vectors.shape[1])], [True] * 21)
    assert len(with_empty) == 20
    arrays = index.arrays
    again = Neighbours(arrays["vectors"], arrays["scam"], arrays["projection"], index.settings)
    assert again.vectors.dtype == np.float16 and again.projection.shape == (512, 128)
    assert [again.scam_share(v) for v in vectors[:20]] == [
        index.scam_share(v) for v in vectors[:20]
    ]


def test_the_shipped_model_carries_the_neighbours_of_every_real_row(analyzer: Analyzer) -> None:
    model = analyzer.model
    assert model.neighbours is not None and model.fast.neighbours is None
    real, _ = data.deduplicate(data.load_real() + data.load_real_quoted())
    # Every real row with a text, but those whose texts repeat once masked (deduplicated in
    # training too): at least nine in ten.
    assert 0.9 * len(real) <= len(model.neighbours) <= len(real)


def _model_score(verdict: Any) -> float:
    return next(s.score for s in verdict.signals if s.id == "model")


def test_evidence_meaning_cannot_see_keeps_the_neighbours_from_lowering_a_scam(
    analyzer: Analyzer,
) -> None:
    """A lender's phishing notice sits among the genuine notices it imitates: its neighbours
    lower its scam odds, but the look-alike link that gives it away is not in its meaning."""
    record = parse_record(
        {
            "text": "【广发银行】您的信用卡分期账户多收利息268.00元已核准退还，请于当日登录 "
            "cgb-tk.cn/r8 领取，逾期视为自动放弃。"
        }
    )
    (reading,) = analyzer.model.read_many([analyzer.analyze(record)])
    # What the test is about: the neighbours read it as a genuine notice.
    assert reading.plain is not None and reading.probabilities["scam"] < reading.plain["scam"]
    verdict = analyzer.check(record)
    assert any(s.id == "brand_link_mismatch" for s in verdict.signals)
    assert _model_score(verdict) == round(reading.plain["scam"], 4)
    assert verdict.category == "scam"


def test_without_such_evidence_the_neighbours_lowering_stands(analyzer: Analyzer) -> None:
    """Genuine notices the neighbours read as genuine keep the lowered reading."""
    genuine = [e for e in data.load_real() if e.label in {"legit", "other"} and e.record.text]
    analyses = [analyzer.analyze(e.record) for e in genuine]
    lowered = [
        (example, reading)
        for example, reading in zip(genuine, analyzer.model.read_many(analyses), strict=True)
        if reading.plain is not None and reading.probabilities["scam"] < reading.plain["scam"]
    ]
    assert len(lowered) >= 20
    kept = 0
    for example, reading in lowered:
        verdict = analyzer.check(example.record)
        if not any(s.category == "scam" and s.source != "model" for s in verdict.signals):
            assert _model_score(verdict) == round(reading.probabilities["scam"], 4)
            kept += 1
    assert kept >= 10
