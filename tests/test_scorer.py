"""The compiled scorer gives the trained estimator's numbers, and the fast paths its verdicts.

A model of each compilable learner is trained here on the project corpus and the real rows (one
C each, about a minute), so the reference estimator (scikit-learn) and its compiled form
(service/engine/scorer.py) can be compared on every row.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model import data, fit
from service.cli.main import SCORE_CHUNK
from service.engine.model import (
    ModelInput,
    TextModel,
    model_input,
    nonzero_features,
    with_embeddings,
)
from service.engine.normalize import normalize
from service.engine.pipeline import Analyzer
from service.engine.schemas import Verdict, parse_record
from service.engine.scorer import (
    CompiledModel,
    CompiledVectorizer,
    TermsByColumn,
    compile_model,
    read_arrays,
    write_arrays,
)


@pytest.fixture(scope="module")
def rows() -> list[data.Example]:
    """Every corpus and real row, duplicates included: the whole set the promise covers."""
    examples = data.load_corpus() + data.load_real()
    if len(examples) < 500:
        pytest.skip("corpus and real rows not present")
    return examples


@pytest.fixture(scope="module")
def inputs(rows: list[data.Example], rules_only_analyzer: Analyzer) -> list[ModelInput]:
    """Every row's input with its sentence embedding (what the shipped candidate reads)."""
    embeddings = fit.sentence_embeddings([e.record.text or "" for e in rows])
    return with_embeddings(
        [model_input(rules_only_analyzer.analyze(e.record)) for e in rows], embeddings
    )


@pytest.fixture(scope="module", params=["char_svm", fit.SHIPPED_CANDIDATE])
def trained(
    request: pytest.FixtureRequest,
    rows: list[data.Example],
    inputs: list[ModelInput],
    rules_only_analyzer: Analyzer,
) -> TextModel:
    """Each learner and feature builder the compiled scorer covers (model/fit.py CANDIDATES):
    the shipped logistic regression over characters, Latin-letter words and the sentence
    embedding, and the linear SVM over characters alone. One C each: the arrays must equal the
    estimator whichever C the grid would pick, and each value of the grid cost CI another three
    fits of the whole corpus."""
    examples, stats = data.deduplicate(rows)
    # deduplicate keeps the row objects themselves: their inputs are already analysed.
    input_of = {id(example): item for example, item in zip(rows, inputs, strict=True)}
    rules = rules_only_analyzer.ruleset.rules
    candidate = fit.CANDIDATES[request.param]
    model, _ = fit.fit_model(
        fit.Dataset(examples, [input_of[id(example)] for example in examples], stats),
        [r.id for r in rules],
        rules,
        candidate=replace(candidate, c_grid=candidate.c_grid[:1]),
    )
    return model


@pytest.fixture(scope="module")
def compiled(trained: TextModel, tmp_path_factory: pytest.TempPathFactory) -> CompiledModel:
    """Compiled, written and read back: what serving runs."""
    path = tmp_path_factory.mktemp("compiled") / "model.npz"
    write_arrays(compile_model(trained), path)
    return read_arrays(path)


def test_compiled_tfidf_is_bit_identical_to_the_vectorizer(
    trained: TextModel, compiled: CompiledModel, inputs: list[ModelInput]
) -> None:
    texts = [item.text for item in inputs]
    expected = trained.vectorizer.transform(texts)
    got = compiled.vectorizer.transform(texts)
    assert np.array_equal(got.indptr, expected.indptr)
    assert np.array_equal(got.indices, expected.indices)
    assert np.array_equal(got.data, expected.data)


def test_compiled_probabilities_equal_the_estimator_on_every_row(
    trained: TextModel, compiled: CompiledModel, inputs: list[ModelInput]
) -> None:
    expected = trained.predict_inputs(inputs)
    got = compiled.predict_inputs(inputs)
    assert got.shape == expected.shape == (len(inputs), 4)
    assert np.abs(got - expected).max() <= 1e-9
    # The rows a word-only reading drops sender features from, too.
    text_only = [replace(item, features={}) for item in inputs]
    assert (
        np.abs(compiled.predict_inputs(text_only) - trained.predict_inputs(text_only)).max() <= 1e-9
    )


def test_the_calibrator_reads_the_feature_count_the_estimator_sees(
    trained: TextModel, compiled: CompiledModel, inputs: list[ModelInput]
) -> None:
    # The calibration (service/engine/model.py) reads each row's non-zero feature count: the
    # compiled scorer counts it without building the matrix, and must count what getnnz counts.
    _, seen = compiled._decision(inputs)
    dense = getattr(trained.classifier, "dense_columns", None)
    assert np.array_equal(seen, nonzero_features(trained.matrix(inputs), dense))
    assert seen.min() >= 0 and seen.max() > 100


def test_a_row_scores_the_same_alone_and_in_a_batch(
    compiled: CompiledModel, inputs: list[ModelInput]
) -> None:
    batch = compiled.predict_inputs(inputs[:400])
    alone = np.vstack([compiled.predict_inputs([item]) for item in inputs[:400]])
    assert np.array_equal(batch, alone)


def test_the_words_alone_reuse_the_full_reading_only_when_the_sender_added_nothing(
    analyzer: Analyzer, rows: list[data.Example]
) -> None:
    model = analyzer.model
    with_sender = without_sender = 0
    for example in rows[:: max(1, len(rows) // 600)]:
        analysis = analyzer.analyze(example.record)
        (full,) = model.read_many([analysis])
        computed = model.predict_text_only(analysis)
        reused = model.predict_text_only(analysis, full=full)
        assert reused == computed  # the shortcut never changes a number
        if reused is full.probabilities:
            without_sender += 1
        else:
            with_sender += 1
    assert with_sender > 20 and without_sender > 20  # both branches ran


def test_compiled_weights_and_explanations_match_the_estimator(
    trained: TextModel,
    compiled: CompiledModel,
    rows: list[data.Example],
    rules_only_analyzer: Analyzer,
) -> None:
    for name in trained.feature_names:
        for category in trained.categories:
            assert compiled.learned_weight(name, category) == trained.learned_weight(name, category)
    scams = [e for e in rows if e.label == "scam" and e.record.text][:100]
    for example in scams:
        analysis = rules_only_analyzer.analyze(example.record)
        expected = trained.phrases(analysis, "scam")
        assert compiled.phrases(analysis, "scam") == expected
        # From the row the reading already made: the same phrases, no second transform.
        (reading,) = compiled.read_many([analysis])
        assert compiled.phrases(analysis, "scam", reading.text) == expected


def test_the_cascade_compiles_to_its_estimators_and_keeps_their_choice(
    trained: TextModel,
    compiled: CompiledModel,
    rows: list[data.Example],
    rules_only_analyzer: Analyzer,
) -> None:
    """The cascade's first reader compiles to its estimator's numbers too, so the compiled
    model lets the same messages skip the embedding as the trained one."""
    if trained.fast is None:
        assert compiled.fast is None
        return
    assert compiled.fast is not None and compiled.fast_band == trained.fast_band
    analyses = [rules_only_analyzer.analyze(e.record) for e in rows[:: max(1, len(rows) // 500)]]
    plain = [model_input(analysis) for analysis in analyses]
    expected = trained.fast.predict_inputs(plain)
    assert np.abs(compiled.fast.predict_inputs(plain) - expected).max() <= 1e-9
    got, want = compiled.read_many(analyses), trained.read_many(analyses)
    assert [r.fast for r in got] == [r.fast for r in want]
    for mine, theirs in zip(got, want, strict=True):
        for category, p in theirs.probabilities.items():
            assert abs(mine.probabilities[category] - p) <= 1e-9


def test_the_cascade_reads_the_embedding_only_where_the_first_reader_is_unsure(
    analyzer: Analyzer, rows: list[data.Example]
) -> None:
    """A reading the n-gram-only reader is sure of stands as that reader gave it, with no
    embedding computed; every other message gets the full model's reading, embedding and all.
    Real rows give both kinds."""
    model = analyzer.model
    assert model.fast is not None and model.fast_band is not None
    analyses = [analyzer.analyze(e.record) for e in rows[:: max(1, len(rows) // 400)]]
    readings = model.read_many(analyses)
    fast = model.fast.predict_inputs([model_input(analysis) for analysis in analyses])
    sure = model.is_sure(fast)
    assert 40 <= sure.sum() <= len(analyses) - 40, sure.sum()
    unsure = [analysis for analysis, s in zip(analyses, sure, strict=True) if not s]
    full = model.predict_inputs(model.inputs_of(unsure))
    full_rows = iter(full)
    for reading, first, is_sure in zip(readings, fast, sure, strict=True):
        assert reading.fast == bool(is_sure)
        expected = first if is_sure else next(full_rows)
        assert list(reading.probabilities.values()) == expected.tolist()
        assert (reading.input.embedding is None) == bool(is_sure)
        if is_sure:
            low, high = model.fast_band
            scam, abusive = reading.probabilities["scam"], reading.probabilities["abusive"]
            assert (scam <= low and abusive <= low) or scam >= high
    # Explanations come from the weights that gave the reading.
    assert all(model.reader_of(r) is (model.fast if r.fast else model) for r in readings)


def test_terms_decoded_on_demand_are_the_vocabulary(
    trained: TextModel, compiled: CompiledModel
) -> None:
    # Explanations read a column's n-gram from its key instead of a list of every term (a word
    # column from the sorted word terms).
    terms, _ = compiled._explainer()
    vocabulary = trained.vectorizer.vocabulary_
    assert len(terms) == len(vocabulary)
    assert all(terms[column] == term for term, column in vocabulary.items())
    columns = sorted(vocabulary.values())[:: max(1, len(vocabulary) // 500)]
    assert terms.many(columns) == [terms[column] for column in columns]
    if isinstance(terms, TermsByColumn):
        assert isinstance(compiled.vectorizer, CompiledVectorizer)


def test_the_artifact_bytes_depend_only_on_the_model(trained: TextModel, tmp_path: Path) -> None:
    write_arrays(compile_model(trained), tmp_path / "a.npz")
    write_arrays(compile_model(trained), tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def _key(verdict: Verdict) -> tuple:
    return (
        verdict.category,
        verdict.level,
        [(s.id, s.span, s.weight) for s in verdict.signals],
        verdict.claimed_brands,
        verdict.advice,
    )


def _same_verdicts(first: list[Verdict], second: list[Verdict]) -> None:
    assert len(first) == len(second)
    for one, other in zip(first, second, strict=True):
        assert _key(one) == _key(other)
        assert one.risk == pytest.approx(other.risk, abs=1e-9)


def test_fast_path_gives_the_reference_verdicts_on_the_real_corpus(
    request: pytest.FixtureRequest,
    trained: TextModel,
    compiled: CompiledModel,
    rules_only_analyzer: Analyzer,
) -> None:
    """Reference: the scikit-learn estimator (one transform and predict over the batch: its rows
    do not depend on each other). Fast: the compiled scorer over the whole batch (check_many)
    and one by one (check)."""
    real = [e.record for e in data.load_real()]
    if request.node.callspec.params["trained"] != fit.SHIPPED_CANDIDATE:
        # The shipped learner is held on every real row; the other shares every stage after the
        # decision values, so a spread quarter of the rows covers its path (a minute of CI).
        real = real[::4]
    base = rules_only_analyzer
    reference = Analyzer(base.directory, base.ruleset, trained)
    fast = Analyzer(base.directory, base.ruleset, compiled)
    expected = reference.check_many(real)
    _same_verdicts(fast.check_many(real), expected)
    _same_verdicts([fast.check(record) for record in real], expected)


def test_shipped_model_check_many_equals_check_on_the_bench_messages(analyzer: Analyzer) -> None:
    """The messages `make bench` times (model/corpus + model/real), every third of them so the
    chunks still hold a mix of both: one batch, the chunks `dunscan score` cuts, and one record
    at a time give the same verdicts, field for field."""
    records = [e.record for e in data.load_corpus() + data.load_real()][::3]
    assert len(records) > 3 * SCORE_CHUNK
    one_by_one = [analyzer.check(record).model_dump() for record in records]
    whole = [v.model_dump() for v in analyzer.check_many(records)]
    chunked = [
        v.model_dump()
        for start in range(0, len(records), SCORE_CHUNK)
        for v in analyzer.check_many(records[start : start + SCORE_CHUNK])
    ]
    assert whole == one_by_one
    assert chunked == one_by_one


def test_check_many_scores_repeated_records_once_each_under_its_own_id(
    analyzer: Analyzer,
) -> None:
    """A batch holding the same messages again under other ids (and without one) gives every
    record the verdict `check` gives it alone."""
    records = [e.record for e in data.load_real()[:40]]
    again = [record.model_copy(update={"id": f"again-{n}"}) for n, record in enumerate(records)]
    bare = [record.model_copy(update={"id": None}) for record in records]
    batch = [item for trio in zip(records, again, bare, strict=True) for item in trio]
    verdicts = analyzer.check_many(batch)
    assert [v.id for v in verdicts] == [record.id for record in batch]
    assert [v.model_dump() for v in verdicts] == [analyzer.check(r).model_dump() for r in batch]


def test_check_many_keeps_order_and_handles_an_empty_batch(analyzer: Analyzer) -> None:
    records = [
        parse_record(
            {"text": "【支付宝】您的花呗已逾期，请缴纳解冻费500元，否则影响征信", "id": "a"}
        ),
        parse_record({"text": "晚上一起吃饭吗", "id": "b"}),
    ]
    verdicts = analyzer.check_many(records)
    assert [v.id for v in verdicts] == ["a", "b"]
    assert verdicts[0].category == "scam"
    assert analyzer.check_many([]) == []


def test_rule_prefilter_finds_exactly_what_every_rule_finds(rules_only_analyzer: Analyzer) -> None:
    ruleset = rules_only_analyzer.ruleset
    # Every rule example and corpus text and every other real text (each real text runs every
    # rule's full regex here: all of them cost CI another twenty seconds).
    rows = data.load_real()[::2] + data.load_corpus()
    texts = [e.record.text for e in rows if e.record.text]
    for rule in ruleset.rules:
        texts.extend(rule.must_match)
        texts.extend(rule.must_not_match)
    fired = 0
    for text in texts:
        norm = normalize(text)
        fast = ruleset.hits(norm)
        assert fast == ruleset.hits(norm, prefilter=False), text
        fired += len(fast)
    assert fired > len(ruleset.rules)  # the comparison covered rules that fire
