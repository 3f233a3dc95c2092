"""How the shipped model is fitted: the dataset, the candidates, the fit, and pinned numerics.

Shared by `make train` (model/train.py), `make eval` (model/evaluate.py, model/real_eval.py) and
the tests. It imports neither the trainer nor the evaluators, so they all stand on it instead of
on each other (train.py runs the evaluations for the card; evaluate.py refits on its splits).
Everything is seeded; with the numerics of `pinned_environment` the bytes depend only on the
inputs.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from model import data
from service.engine.known_scripts import KnownScripts
from service.engine.model import (
    LATIN_WORD_PATTERN,
    CalibratedLinear,
    CharWordVectorizer,
    ModelInput,
    TextModel,
    calibration_inputs,
    decision_values,
    embedded_text,
    embedding_matrix,
    jieba_words,
    model_input,
    nonzero_features,
    structured_matrix,
    with_embeddings,
)
from service.engine.neighbours import Neighbours
from service.engine.normalize import normalize
from service.engine.sentence import EMBEDDING_DIM, encoder_id, shared_encoder
from service.paths import CACHE_DIR, CORPUS_DIR, DATA_DIR, REAL_DIR

log = logging.getLogger("model.fit")

SEED = 20261123
NGRAM_RANGE = (1, 3)  # characters: Chinese needs no word segmentation this way
MIN_DF = 2  # an n-gram seen once is a name or a typo, not a pattern
MAX_TEXT_FEATURES = 150_000  # keeps the artifact well under 20 MB
C_GRID = (4.0, 16.0)  # inverse L2 strength, chosen by CV inside the training rows
# Value of a structured (rule / number) feature next to TF-IDF values (rows have unit norm, so an
# n-gram's value is ~0.05): a larger value means a weaker penalty on rule and number weights.
# 3.0 was tried and lost in this CV (weighted log-loss 0.111-0.116 vs 0.098 at 1.0, manifest of
# 2026-11-23), so it is left out to halve training time.
STRUCTURED_SCALES = (1.0,)
# Value of the sentence embedding's columns (a unit vector of 512 values, each ~0.04) next to the
# n-grams', for the candidates that read it. Model-only on the 7,567 real rows (`python -m
# model.probe --c 4 --sentence-embedding 0.25 0.5 1`, stop 47): AUC 0.9446 without it, 0.9520 /
# 0.9523 / 0.9491 at 0.25 / 0.5 / 1; scams caught at 3 % of genuine rows flagged 62.4 -> 64.7 %
# at 0.5.
EMBEDDING_SCALE = 0.5
# The cascade (TextModel.read_many): the n-gram-only first reader's reading stands when its scam
# and abusive probabilities are both at most the first value, or its scam probability at least
# the second; every other message is embedded and read by the full model. Simulated on stop 47's
# and stop 48's grouped real verdicts (the n-gram-only and the full model, same rows and folds):
# at (0.05, 0.9) 46 % of the real rows and 49 % of all rows never need the embedding, and the
# figures move by one or two rows (scams flagged 2038 -> 2036, genuine 377 -> 376, abusive kept);
# at (0.1, 0.9) 58 % skip it, at 7 scams and 3 abusive rows fewer.
FAST_BAND = (0.05, 0.9)
# Calibration sees the training weights raised to this power: 1 keeps the weighted, scam-heavy
# mix (every ordinary text starts to look like a scam), 0 counts each row once. Measured on the
# grouped real evaluation at REAL_SHARE 0.7 (scam flagged / genuine flagged / everyday SMS
# flagged): 1.0 -> 87 / 8.5 / 11.4 %, 0.75 -> 83 / 8.0 / 7.2 %, 0.5 -> 77 / 7.3 / 4.4 %,
# 0 -> 63 / 5.7 / 1.8 % (1,236 real rows). With 1,612 real rows and genuine-notice marks that
# cap a model-only reading: 0.75 -> 84.6 / 7.6 / 7.5 %, 0.5 -> 79.8 / 7.0 / 4.5 %; pushed (high)
# everyday SMS 2.6 / 1.8 %. 0.75 is shipped: five more scams in a hundred caught for under one
# more genuine notice in a hundred; most of the extra everyday flags are medium, never pushed.
CALIBRATION_WEIGHT_POWER = 0.75
CV_FOLDS = 3  # out-of-fold decision values for choosing C and fitting the calibrator
# The project's corpus is small (hundreds of rows) next to ~18k public rows, yet it is the only
# source of collection scams, abusive collection and senders. It gets this share of the total
# training weight, but no single row may weigh more than MAX_ROW_WEIGHT public rows, so the model
# cannot memorise a template.
CORPUS_SHARE = 0.2
MAX_ROW_WEIGHT = 6.0
# Real messages (model/real/ and real_quoted) are what the product is judged on: together they
# get this share of the training weight, at most MAX_REAL_ROW_WEIGHT public rows' worth each.
# Chosen on the grouped real evaluation with weighted calibration (real_share 0.35 / 0.7: scam
# flagged 83 / 87 %, genuine flagged 8.8 / 8.5 %); the public rows stay as hard negatives, and
# CALIBRATION_WEIGHT_POWER keeps their everyday messages from being flagged.
REAL_SHARE = 0.7
MAX_REAL_ROW_WEIGHT = 60.0
# Inside the real share, a row of a source (page, repository) that gives n rows weighs n ** -power
# against a source's single row (then rescaled to the same real total): a repository of 200
# templates would otherwise teach its own wording as much as 200 different pages do. 0 weighs every
# row alike. Measured on the grouped real evaluation (7,542 rows, the same folds; scams flagged /
# genuine flagged / AUC / scams at a cut flagging 3 % of genuine rows): 0 -> 80.5 / 8.2 % / 0.943
# / 60.6 %, 0.5 -> 80.7 / 8.8 % / 0.942 / 58.0 %, 1 -> 81.3 / 9.9 % / 0.937 / 51.4 %. Evening out
# the sources buys no separation: the many-row sources are genuine templates the model needs.
REAL_SOURCE_POWER = 0.0
# A rule that fires on fewer training rows than this keeps its hand-set YAML weight (applied as a
# log-odds offset on its category): the data is too thin to learn one.
MIN_RULE_HITS = 5
# Sentence fragments: each real message of two or more sentences can also be taught one sentence
# at a time (its label, FRAGMENT_SHARE of its weight shared among its sentences). Scam calls and
# chats reach people, and are quoted, a line at a time, while a whole message teaches each n-gram
# diluted among all the others (TF-IDF rows have unit norm). Fragments only train the linear
# model: C, the calibration and every evaluation read whole rows, and a fold's fragments come
# from its own training rows. Measured at stop 45 on the 7,542 real rows and hash folds (8,297
# fragments of 2,495 rows), share 0 against 0.5: model-only (`python -m model.probe --fragments
# 0.5 1 --c 4`) the AUC rose 0.9433 -> 0.9453; the full verdict (`python -m model.real_eval
# --fragment-share 0.5`) did not gain: scams flagged 2,052 -> 2,055 of 2,550, genuine rows 376 ->
# 391 of 4,574, abusive read as abusive 286 -> 281, AUC 0.9426 -> 0.9434, scams at the 3 / 5 / 10
# % cuts 60.6 / 70.3 / 83.5 -> 60.6 / 70.1 / 83.2 %, and everyday English SMS flagged 71 -> 144 of
# 1,000 (short English scam sentences taught alone read like everyday English). Fragments of
# mostly-Chinese rows only kept the guard but gained nothing beyond fold noise (AUC 0.9435,
# scams at the 3 % cut 58.3 %; model/HISTORY.md, stop 45). So 0: off.
FRAGMENT_SHARE = 0.0
MIN_FRAGMENT_CHARS = 6
MAX_FRAGMENTS = 8
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")


@dataclass
class Dataset:
    """Deduplicated examples with their model inputs, aligned by index."""

    examples: list[data.Example]
    inputs: list[ModelInput]
    stats: dict[str, int]
    # The normalised text of each example (what known scripts are matched on).
    norm_texts: list[str] = field(default_factory=list)
    # Sentence fragments of multi-sentence real rows (FRAGMENT_SHARE): each one's model input
    # and the index of the row it came from.
    fragment_inputs: list[ModelInput] = field(default_factory=list)
    fragment_parents: list[int] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.examples])

    def subset(self, index: Sequence[int]) -> Dataset:
        """These rows, with the fragments of these rows only (a held-out row's sentences must
        not train the model that judges it)."""
        position = {row: k for k, row in enumerate(index)}
        kept = [
            (position[parent], item)
            for parent, item in zip(self.fragment_parents, self.fragment_inputs, strict=True)
            if parent in position
        ]
        return Dataset(
            [self.examples[i] for i in index],
            [self.inputs[i] for i in index],
            self.stats,
            [self.norm_texts[i] for i in index] if self.norm_texts else [],
            [item for _, item in kept],
            [parent for parent, _ in kept],
        )


def sentence_fragments(text: str) -> list[str]:
    """The sentences of a message worth teaching alone (at least MIN_FRAGMENT_CHARS, at most
    MAX_FRAGMENTS of them), or none when it holds fewer than two."""
    parts = [part.strip() for part in _SENTENCE_END.split(text)]
    parts = [part for part in parts if len(part) >= MIN_FRAGMENT_CHARS]
    return parts[:MAX_FRAGMENTS] if len(parts) >= 2 else []


def load_analyzer() -> Any:
    """The real pipeline (rules + official numbers), without a model."""
    from service.engine.pipeline import Analyzer

    return Analyzer.load(use_model=False)


def build_dataset(
    analyzer: Any,
    data_dir: Path = DATA_DIR,
    corpus_dir: Path = CORPUS_DIR,
    real_dir: Path = REAL_DIR,
    sources: frozenset[str] = data.ALL_SOURCES,
    fragments: bool = FRAGMENT_SHARE > 0,
) -> Dataset:
    """Every training example with its model input; with `fragments`, also the sentence
    fragments of the real rows (FRAGMENT_SHARE)."""
    examples, stats = data.load_training_examples(data_dir, corpus_dir, real_dir, sources)
    resolved, inputs, norm_texts, embedded = [], [], [], []
    for example in examples:
        analysis = analyzer.analyze(example.record)
        embedded.append(embedded_text(analysis))
        resolved.append(data.resolve_genuine(example, analysis.finance_related))
        item = model_input(analysis)
        if example.source == "fbs":
            item = ModelInput(item.text, fbs_observable(item.features))
        inputs.append(item)
        norm_texts.append(analysis.norm.text if analysis.norm is not None else "")
    inputs = with_embeddings(inputs, sentence_embeddings(embedded))
    if not fragments:
        return Dataset(resolved, inputs, stats, norm_texts)
    real = [example.source in data.REAL_SOURCES for example in examples]
    fragment_inputs, fragment_parents = fragments_of(analyzer, examples, real)
    return Dataset(resolved, inputs, stats, norm_texts, fragment_inputs, fragment_parents)


def fragment_weights(
    weights: np.ndarray, parents: np.ndarray, share: float = FRAGMENT_SHARE
) -> np.ndarray:
    """Each fragment's training weight: `share` of its row's weight (`weights`, by row),
    divided among that row's fragments (`parents`: the row of each fragment)."""
    per_row = np.bincount(parents, minlength=len(weights))
    return weights[parents] * share / np.maximum(per_row[parents], 1)


def fragments_of(
    analyzer: Any, examples: Sequence[data.Example], taken: Sequence[bool] | None = None
) -> tuple[list[ModelInput], list[int]]:
    """The model inputs of the sentence fragments (`sentence_fragments`) of the examples that
    `taken` marks (all by default), and the index of the example each came from."""
    inputs, parents, sentences = [], [], []
    for row, example in enumerate(examples):
        if (taken is not None and not taken[row]) or not example.record.text:
            continue
        for sentence in sentence_fragments(example.record.text):
            part = example.record.model_copy(update={"text": sentence})
            inputs.append(model_input(analyzer.analyze(part)))
            parents.append(row)
            sentences.append(sentence)
    return with_embeddings(inputs, sentence_embeddings(sentences)), parents


def inputs_of(analyzer: Any, examples: Sequence[data.Example]) -> list[ModelInput]:
    """The model's input for each example as training builds it, sentence embedding included
    (build_dataset also hides what FBS's anonymisation hid; this is for rows of other sources)."""
    analyses = [analyzer.analyze(example.record) for example in examples]
    inputs = [model_input(analysis) for analysis in analyses]
    return with_embeddings(inputs, sentence_embeddings([embedded_text(a) for a in analyses]))


def sentence_embeddings(texts: Sequence[str]) -> np.ndarray:
    """The sentence embedding of each text (service/engine/sentence.py), kept in the cache
    directory by the text's digest: the ~30k training texts take ~90 s to embed on one core, and
    every training and evaluation run reads the same texts."""
    import hashlib

    digests = [hashlib.sha256(text.encode("utf-8")).digest() for text in texts]
    # Embeddings computed under the pinned numerics are kept apart from the others: their last
    # bits differ, and a training run must read the same numbers on every machine.
    numerics_kind = "pinned" if os.environ.get(PINNED_FLAG) else "native"
    # ("each": every text encoded alone, SentenceEncoder.encode.)
    path = CACHE_DIR / f"embeddings-{encoder_id()}-{numerics_kind}-each.npz"
    known: dict[bytes, np.ndarray] = {}
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                known = dict(zip(stored["digests"].tolist(), stored["vectors"], strict=True))
        except (OSError, ValueError, KeyError):
            log.warning("embedding cache unreadable; embedding again", extra={"path": str(path)})
    missing = sorted({d: t for d, t in zip(digests, texts, strict=True) if d not in known}.items())
    if missing:
        started = time.perf_counter()
        vectors = shared_encoder().encode([text for _, text in missing])
        known.update(zip([digest for digest, _ in missing], vectors, strict=True))
        log.info("embedded %d texts in %.0f s", len(missing), time.perf_counter() - started)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial.npz")
            keys = sorted(known)
            np.savez(
                partial,
                digests=np.array(keys, dtype="S32"),
                vectors=np.array([known[key] for key in keys], dtype=np.float32),
            )
            os.replace(partial, path)
        except OSError as error:
            log.warning("embedding cache not written (%s)", type(error).__name__)
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.array([known[digest] for digest in digests], dtype=np.float32)


# FBS hides every number and link behind a placeholder, replaced by a surrogate (model/data.py):
# the type of a link (short, bare IP, look-alike) or whether a number is official cannot be seen
# there, while mudou and the corpus show them raw. FBS rows keep only what survives the
# anonymisation: rule hits (except link-shape rules), that a phone number / link / brand appears,
# mobile vs landline, and the brand mismatch signals (a placeholder number or link next to a
# claimed brand was, as far as anyone can tell, not the brand's own). mudou keeps every feature:
# its genuine notices carrying merchant 400 numbers and t.cn links are exactly the hard
# negatives that teach the model a mismatch alone is not a scam.
_FBS_KEPT_PREFIXES = (
    "kind:",
    "text:",
    "rule:",
    "brand:claimed",
    "contact:phone",
    "contact:url",
    "contact_number:mobile",
    "contact_number:landline",
    "numbers:brand_link_mismatch",
    "numbers:brand_number_mismatch",
)
_LINK_SHAPE_RULES = frozenset(
    {"rule:link_bare_ip", "rule:link_lookalike_domain", "rule:link_shortener_action"}
)


def fbs_observable(features: dict[str, float]) -> dict[str, float]:
    return {
        name: value
        for name, value in features.items()
        if name.startswith(_FBS_KEPT_PREFIXES) and name not in _LINK_SHAPE_RULES
    }


def sample_weights(
    examples: Sequence[data.Example],
    real_share: float = REAL_SHARE,
    source_power: float | None = None,
) -> np.ndarray:
    """Real rows carry `real_share` and corpus rows CORPUS_SHARE of the weight next to the public
    rows (each capped per row; real rows of a large source weigh less, REAL_SOURCE_POWER);
    classes are then balanced by the square root of their frequency, so rare classes count
    without dominating."""
    power = REAL_SOURCE_POWER if source_power is None else source_power
    is_corpus = np.array([e.source == data.CORPUS for e in examples])
    is_real = np.array([e.source in data.REAL_SOURCES for e in examples])
    weights = np.ones(len(examples))
    n_public = len(examples) - int(is_corpus.sum()) - int(is_real.sum())
    public_share = 1.0 - CORPUS_SHARE - real_share
    for mask, share, cap in (
        (is_corpus, CORPUS_SHARE, MAX_ROW_WEIGHT),
        (is_real, real_share, MAX_REAL_ROW_WEIGHT),
    ):
        if mask.any() and n_public:
            weights[mask] = min(share / public_share * n_public / int(mask.sum()), cap)
    if power and is_real.any():
        keys = [data.source_keys(e)[0] if e.source in data.REAL_SOURCES else "" for e in examples]
        rows_of = Counter(key for key in keys if key)
        relative = np.array([rows_of[key] ** -power if key else 0.0 for key in keys])
        real_total = weights[is_real].sum()
        weights[is_real] = relative[is_real] * (real_total / relative[is_real].sum())
        weights[is_real] = np.minimum(weights[is_real], MAX_REAL_ROW_WEIGHT)
    labels = np.array([e.label for e in examples])
    totals = {label: weights[labels == label].sum() for label in np.unique(labels)}
    mean_total = sum(totals.values()) / len(totals)
    for label, total in totals.items():
        weights[labels == label] *= np.sqrt(mean_total / total)
    return weights / weights.mean()


def _vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char",
        ngram_range=NGRAM_RANGE,
        min_df=MIN_DF,
        max_features=MAX_TEXT_FEATURES,
        sublinear_tf=True,
        lowercase=False,
        dtype=np.float32,
    )


def _logistic(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=2000)


@dataclass(frozen=True)
class Candidate:
    """One way to build the text model, compared by `python -m model.real_eval`."""

    name: str
    description: str
    # Add word 1-2-grams: "jieba" (a Chinese segmenter) or "latin" (Latin-letter words only).
    words: str = ""
    # lr: multinomial logistic regression; genuine_lr: the same over scam / abusive / genuine,
    # legit against other learnt apart (GenuineSplitLogisticRegression); svm: linear SVM.
    learner: str = "lr"
    c_grid: tuple[float, ...] = C_GRID
    # The sentence embedding of the pasted text beside the n-grams (service/engine/sentence.py),
    # at this scale; 0: not read.
    embedding_scale: float = 0.0
    # With an embedding: an n-gram-only first reader of the same features, whose reading stands
    # inside this band (FAST_BAND); None: every message is embedded.
    fast_band: tuple[float, float] | None = None

    @property
    def learner_name(self) -> str:
        """The learner as the model card names it."""
        if self.learner == "svm":
            return "Linear SVM (squared hinge, one-vs-rest)"
        if self.learner == "genuine_lr":
            return (
                "Multinomial logistic regression over scam / abusive / genuine, legit vs other "
                "split by a second logistic regression on the genuine rows"
            )
        return "Multinomial logistic regression"

    def vectorizer(self) -> Any:
        if not self.words:
            return _vectorizer()
        return CharWordVectorizer(_vectorizer(), _word_vectorizer(self.words))

    def estimator(self, c: float) -> Any:
        if self.learner == "svm":
            return Float32LinearSVC(C=c, max_iter=5000, random_state=SEED)
        if self.learner == "genuine_lr":
            return GenuineSplitLogisticRegression(C=c, max_iter=2000)
        return _logistic(c)


class Float32LinearSVC(LinearSVC):
    """LinearSVC whose coefficients are kept in float32, as LogisticRegression keeps them when
    fitted on float32 TF-IDF: liblinear returns float64, which would double the weight arrays
    every server process holds (2.4 MB more) for differences far below the calibration's."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Float32LinearSVC:
        super().fit(X, y, sample_weight=sample_weight)
        self.coef_ = self.coef_.astype(np.float32)
        self.intercept_ = self.intercept_.astype(np.float32)
        return self


GENUINE = ("legit", "other")


class GenuineSplitLogisticRegression(LogisticRegression):
    """Multinomial logistic regression whose risk reading does not pay for the legit/other line.

    `legit` (the person's own account) and `other` (chat, ads, codes, warnings) are both genuine;
    a four-way model spends weights telling them apart, which a probe on the grouped real rows
    showed costs the scam reading (P(scam) AUC 0.940 -> 0.943, scams at 3 % of genuine flagged
    60.0 -> 61.2 % with the two trained as one class). So: one regression over scam / abusive /
    genuine, and a second, on the genuine rows only, for legit against other. The four rows of
    `coef_` are abusive, genuine + split/2, genuine - split/2 and scam: the same linear decision
    values every consumer reads (calibrator, compiled scorer, explanations), from which the
    calibrator recovers both the genuine reading and the split."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GenuineSplitLogisticRegression:
        y = np.asarray(y)
        genuine = np.isin(y, GENUINE)
        if sample_weight is None:
            sample_weight = np.ones(len(y))
        sample_weight = np.asarray(sample_weight)
        super().fit(X, np.where(genuine, "genuine", y), sample_weight=sample_weight)
        merged = list(self.classes_)
        split = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(
            X[genuine], y[genuine] == GENUINE[0], sample_weight=sample_weight[genuine]
        )
        half = (split.coef_[0] / 2).astype(self.coef_.dtype)
        half_intercept = self.intercept_.dtype.type(split.intercept_[0] / 2)
        rows, intercepts, classes = [], [], []
        for index, name in enumerate(merged):
            if name != "genuine":
                rows.append(self.coef_[index])
                intercepts.append(self.intercept_[index])
                classes.append(name)
                continue
            for sign, category in ((1, GENUINE[0]), (-1, GENUINE[1])):
                rows.append(self.coef_[index] + sign * half)
                intercepts.append(self.intercept_[index] + sign * half_intercept)
                classes.append(category)
        order = np.argsort(classes)  # scikit-learn keeps classes_ sorted
        self.classes_ = np.asarray(classes)[order]
        self.coef_ = np.vstack(rows)[order]
        self.intercept_ = np.array(intercepts, dtype=self.intercept_.dtype)[order]
        return self


CANDIDATES = {
    c.name: c
    for c in (
        Candidate("char_lr", "character 1-3-grams + rule/number features, logistic regression"),
        Candidate(
            "char_word_lr",
            "character 1-3-grams + jieba word 1-2-grams + rule/number features, logistic "
            "regression",
            words="jieba",
        ),
        Candidate(
            "char_latin_lr",
            "character 1-3-grams + word 1-2-grams of Latin-letter words + rule/number features, "
            "logistic regression",
            words="latin",
        ),
        Candidate(
            "char_latin_use_lr",
            "character 1-3-grams + word 1-2-grams of Latin-letter words + the USE multilingual "
            "sentence embedding of the pasted text + rule/number features, logistic regression",
            words="latin",
            embedding_scale=EMBEDDING_SCALE,
            fast_band=FAST_BAND,
        ),
        Candidate(
            "char_latin_genuine_lr",
            "character 1-3-grams + word 1-2-grams of Latin-letter words + rule/number features, "
            "logistic regression over scam / abusive / genuine with legit vs other learnt apart",
            words="latin",
            learner="genuine_lr",
        ),
        Candidate(
            "char_svm",
            "character 1-3-grams + rule/number features, linear SVM (squared hinge)",
            learner="svm",
            c_grid=(0.1, 0.5),
        ),
    )
}
# The candidate `make train` ships: the best by the grouped real evaluation (model/reports/real.md).
SHIPPED_CANDIDATE = "char_latin_use_lr"


def _word_vectorizer(words: str) -> TfidfVectorizer:
    """Word 1-2-grams of the canonical text: segmented by jieba, or (`latin`) only the words of
    Latin letters, which a regular expression finds (the canonical text is lower-cased and keeps
    a space between two Latin words). English reads in words: three letters say little about
    "bill" or "due" (the character model flagged about one everyday English SMS in nine)."""
    tokens: dict[str, Any] = (
        {"tokenizer": None, "token_pattern": LATIN_WORD_PATTERN}
        if words == "latin"
        else {"tokenizer": jieba_words, "token_pattern": None}
    )
    return TfidfVectorizer(
        analyzer="word",
        **tokens,
        ngram_range=(1, 2),
        min_df=MIN_DF,
        max_features=MAX_TEXT_FEATURES // 2,
        sublinear_tf=True,
        lowercase=False,
        dtype=np.float32,
    )


def structured_feature_names(inputs: Sequence[ModelInput], extra: Sequence[str] = ()) -> list[str]:
    names = {name for item in inputs for name in item.features}
    return sorted(names.union(extra))


def _calibrator() -> LogisticRegression:
    # Matrix scaling: a small multinomial regression from the base model's decision values to
    # probabilities, fitted on out-of-fold decision values (never on rows the base model saw).
    return LogisticRegression(C=1.0, max_iter=1000)


def cv_folds(
    examples: Sequence[data.Example], labels: np.ndarray, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CV folds in which every corpus writing batch is validated by a model that never saw it.

    Public rows (and corpus call records) are split stratified at random; corpus batches b1..bN go
    whole to one fold each. C and the calibration are thus chosen for unseen writing styles, not
    for memorised templates. Real rows go whole by source group (page, repository, publisher).
    """
    fold_of = np.full(len(examples), -1)
    groups = data.source_groups(examples)
    real_groups = sorted({g for g in groups if g})
    order = np.random.default_rng(seed).permutation(len(real_groups))
    fold_of_group = {real_groups[i]: position % CV_FOLDS for position, i in enumerate(order)}
    for i, group in enumerate(groups):
        if group:
            fold_of[i] = fold_of_group[group]
    batches = sorted(
        {e.group for e in examples if e.source == data.CORPUS and e.group[1:].isdigit()},
        key=lambda b: int(b[1:]),
    )
    for position, batch in enumerate(batches):
        members = [
            i for i, e in enumerate(examples) if e.source == data.CORPUS and e.group == batch
        ]
        fold_of[members] = position % CV_FOLDS
    rest = np.flatnonzero(fold_of < 0)
    if len(rest):
        splitter = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed)
        for fold, (_, val) in enumerate(splitter.split(rest, labels[rest])):
            fold_of[rest[val]] = fold
    return [
        (np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold))
        for fold in range(CV_FOLDS)
    ]


def fit_model(
    dataset: Dataset,
    rule_names: Sequence[str] = (),
    rules: Any = None,
    seed: int = SEED,
    candidate: Candidate | None = None,
    real_share: float = REAL_SHARE,
    source_power: float | None = None,
    fragment_share: float = FRAGMENT_SHARE,
) -> tuple[TextModel, dict[str, Any]]:
    """Fit vectoriser, classifier and calibration on `dataset`; return the model and fit facts.

    One k-fold pass over the training rows (cv_folds) gives out-of-fold decision values for every
    (C, structured scale) in the grid: the pair is chosen by the weighted log-loss of the
    calibrated out-of-fold probabilities, the calibrator is fitted on those same out-of-fold
    values, and the base model is refit on all rows. With a `fragment_share` and a dataset that
    holds fragments, every fit of the base model also learns from the sentence fragments of its
    training rows; what is validated and calibrated is whole rows only.
    """
    candidate = candidate or CANDIDATES[SHIPPED_CANDIDATE]
    labels = dataset.labels
    weights = sample_weights(dataset.examples, real_share, source_power)
    vectorizer = candidate.vectorizer()
    vectorizer.fit([item.text for item in dataset.inputs])
    # stop_words_ holds every pruned n-gram (large) and is a set (pickles in hash order, which
    # would make the artifact bytes differ between runs); it is not needed to transform.
    vectorizer.stop_words_ = None
    # scikit-learn stores the column indices as numpy scalars: 150k of them pickle slowly and made
    # loading take ~1 s. Plain ints map the same n-grams to the same columns.
    vectorizer.vocabulary_ = {term: int(col) for term, col in vectorizer.vocabulary_.items()}
    names = structured_feature_names(dataset.inputs, [f"rule:{r}" for r in rule_names])
    columns = {n: i for i, n in enumerate(names)}
    text_part = vectorizer.transform([item.text for item in dataset.inputs])
    structured = structured_matrix(dataset.inputs, columns)
    embedding_scale = candidate.embedding_scale
    # The embedding's columns sit between the n-grams and the structured features.
    dense_columns = (
        (text_part.shape[1], text_part.shape[1] + EMBEDDING_DIM) if embedding_scale else None
    )

    def embedding_of(inputs: Sequence[ModelInput]) -> list[sparse.csr_matrix]:
        return [embedding_matrix(inputs, embedding_scale)] if embedding_scale else []

    fragments = dataset.fragment_inputs if fragment_share > 0 else []
    parents = np.asarray(dataset.fragment_parents if fragments else [], dtype=np.intp)
    # scikit-learn refuses to transform no rows.
    fragment_text = (
        vectorizer.transform([item.text for item in fragments])
        if fragments
        else sparse.csr_matrix((0, text_part.shape[1]))
    )
    fragment_structured = structured_matrix(fragments, columns)
    weights_of_fragments = fragment_weights(weights, parents, fragment_share)
    embedding_part = embedding_of(dataset.inputs)
    fragment_embedding = embedding_of(fragments) if fragments else []

    def matrix_for(scale: float, embedded: bool = True) -> sparse.csr_matrix:
        blocks = embedding_part if embedded else []
        return sparse.hstack([text_part, *blocks, structured * scale], format="csr")

    def fit_on(
        estimator: Any,
        scale: float,
        matrix: sparse.csr_matrix,
        rows: np.ndarray | None = None,
        embedded: bool = True,
    ) -> Any:
        """Fit on `rows` (all when None) and the fragments of those rows."""
        taken = np.arange(len(labels)) if rows is None else rows
        if not len(parents):
            return estimator.fit(matrix[taken], labels[taken], sample_weight=weights[taken])
        chosen = np.zeros(len(labels), dtype=bool)
        chosen[taken] = True
        keep = np.flatnonzero(chosen[parents])
        extra = sparse.hstack(
            [
                fragment_text[keep],
                *(block[keep] for block in (fragment_embedding if embedded else [])),
                fragment_structured[keep] * scale,
            ],
            format="csr",
        )
        return estimator.fit(
            sparse.vstack([matrix[taken], extra], format="csr"),
            np.concatenate([labels[taken], labels[parents[keep]]]),
            sample_weight=np.concatenate([weights[taken], weights_of_fragments[keep]]),
        )

    folds = cv_folds(dataset.examples, labels, seed)

    def calibrated_out_of_fold(
        c: float, scale: float, matrix: sparse.csr_matrix, embedded: bool = True
    ) -> tuple[Any, float]:
        """The calibrator fitted on the folds' out-of-fold decision values for (C, scale), and
        the weighted log-loss of its probabilities on them."""
        values = None
        for fit_rows, val_rows in folds:
            estimator = fit_on(candidate.estimator(c), scale, matrix, fit_rows, embedded)
            fold_values = decision_values(estimator, matrix[val_rows])
            if values is None:
                values = np.zeros((len(labels), fold_values.shape[1]))
            values[val_rows] = fold_values
        # The base model learns from the weighted rows (real wording counts most), but the
        # probabilities are calibrated on the rows' natural mix (each row once): the weighted
        # mix is scam-heavy and would make every ordinary message look like a scam.
        values = calibration_inputs(
            values, nonzero_features(matrix, dense_columns if embedded else None)
        )
        calibrator = _calibrator().fit(
            values, labels, sample_weight=weights**CALIBRATION_WEIGHT_POWER
        )
        proba = calibrator.predict_proba(values)
        loss = float(log_loss(labels, proba, sample_weight=weights, labels=calibrator.classes_))
        return calibrator, loss

    grid = [(c, scale) for scale in STRUCTURED_SCALES for c in candidate.c_grid]
    scores: dict[tuple[float, float], float] = {}
    calibrators = {}
    for c, scale in grid:
        calibrator, scores[c, scale] = calibrated_out_of_fold(c, scale, matrix_for(scale))
        calibrators[c, scale] = calibrator
    best_c, best_scale = min(grid, key=lambda key: (round(scores[key], 6), key))
    base = fit_on(candidate.estimator(best_c), best_scale, matrix_for(best_scale))
    model = TextModel(
        vectorizer,
        names,
        CalibratedLinear(base, calibrators[best_c, best_scale], dense_columns),
        best_scale,
        embedding_scale,
    )
    model.scripts = known_scripts(dataset)
    if embedding_scale:
        model.neighbours = meaning_neighbours(dataset)
    hits = _rule_hit_counts(dataset.inputs)
    if rules is not None:
        model.handset = {
            f"rule:{rule.id}": (rule.category, float(rule.weight))
            for rule in rules
            if hits.get(f"rule:{rule.id}", 0) < MIN_RULE_HITS and rule.category in model.categories
        }
    fast_logloss = None
    if candidate.fast_band is not None and embedding_scale:
        # The cascade's first reader: the same rows, n-grams, features, C and scale without the
        # embedding, calibrated the same way on its own out-of-fold decision values.
        plain = matrix_for(best_scale, embedded=False)
        calibrator, fast_logloss = calibrated_out_of_fold(best_c, best_scale, plain, False)
        base = fit_on(candidate.estimator(best_c), best_scale, plain, embedded=False)
        model.fast = TextModel(vectorizer, names, CalibratedLinear(base, calibrator), best_scale)
        model.fast.handset = dict(model.handset)
        model.fast_band = candidate.fast_band
    info = {
        "candidate": candidate.name,
        "known_scripts": len(model.scripts),
        "meaning_neighbours": len(model.neighbours) if model.neighbours is not None else 0,
        "C": best_c,
        "structured_scale": best_scale,
        "embedding_scale": embedding_scale,
        "fast_band": list(model.fast_band) if model.fast_band else None,
        "fast_logloss": None if fast_logloss is None else round(fast_logloss, 5),
        "C_selection_logloss": {f"C={c} scale={k}": round(v, 5) for (c, k), v in scores.items()},
        "text_features": len(vectorizer.vocabulary_),
        "structured_features": len(names),
        "rows": len(dataset.examples),
        "fragments": len(fragments),
        "labels": dict(sorted(Counter(labels.tolist()).items())),
        "rule_hits": hits,
    }
    return model, info


def known_scripts(dataset: Dataset) -> KnownScripts:
    """The real scam rows as published scripts; every genuine row's shingles are boilerplate."""
    scams, genuine = [], []
    texts = dataset.norm_texts or [
        normalize(e.record.text).text if e.record.text else "" for e in dataset.examples
    ]
    for example, text in zip(dataset.examples, texts, strict=True):
        if example.label == "scam" and example.source in data.REAL_SOURCES:
            scams.append((text, example.meta))
        elif example.label in {"legit", "other"}:
            genuine.append(text)
    return KnownScripts.build(scams, genuine)


def meaning_neighbours(dataset: Dataset) -> Neighbours | None:
    """The real rows' sentence embeddings, each marked scam or not (neighbours.py); None when
    no real row has text to read (a model trained on public or synthetic rows alone)."""
    rows = [
        row
        for row, example in enumerate(dataset.examples)
        if example.source in data.REAL_SOURCES
        and dataset.inputs[row].embedding is not None
        and np.any(dataset.inputs[row].embedding)
    ]
    if not rows:
        return None
    return Neighbours.build(
        [dataset.inputs[row].embedding for row in rows],
        [dataset.examples[row].label == "scam" for row in rows],
    )


def _rule_hit_counts(inputs: Sequence[ModelInput]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for item in inputs:
        counts.update(name for name in item.features if name.startswith("rule:"))
    return dict(sorted(counts.items()))


def learned_weights(model: TextModel) -> dict[str, dict[str, float]]:
    """Coefficient of every structured feature per category (the base linear model)."""
    weights = {}
    for name in model.feature_names:
        weights[name] = {}
        for category in model.categories:
            # Hand-set features report their learned coefficient too: the card shows both.
            value = model.learned_weight(name, category, include_handset=True)
            weights[name][category] = round(float(value or 0.0), 3)
    return weights


# Set in the environment of a training run whose numerics are pinned (see pinned_environment).
PINNED_FLAG = "DUNSCAN_TRAIN_PINNED"


def pinned_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that makes training give the same bits on any machine of one CPU
    architecture (with constraints.txt installed).

    Measured (issue 12 item 10): thread counts and hash seeds did not change the bytes, but the
    CPU did. numpy dispatches float32 log/exp and friends to AVX2/AVX-512 code where the CPU has
    it, and OpenBLAS picks a kernel per CPU; their last bits differ, L-BFGS then takes another
    path, and a model trained with generic kernels differed by up to 0.025 in probability from
    one trained with AVX-512 on the same machine. So training runs on numpy's baseline code
    (every dispatch target disabled), one generic OpenBLAS kernel and one thread.
    """
    import platform

    env = dict(os.environ if environ is None else environ)
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:  # another numpy layout: leave numpy's dispatch as it is
        __cpu_dispatch__ = []
    env["NPY_DISABLE_CPU_FEATURES"] = " ".join(__cpu_dispatch__)
    core = {"x86_64": "Prescott", "amd64": "Prescott", "aarch64": "ARMV8", "arm64": "ARMV8"}
    if platform.machine().lower() in core:
        env["OPENBLAS_CORETYPE"] = core[platform.machine().lower()]
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    # OpenBLAS sizes its blocks from the L2 cache it detects; a fixed size, one blocking.
    env["OPENBLAS_L2_SIZE"] = "512"
    env["PYTHONHASHSEED"] = "0"
    env[PINNED_FLAG] = "1"
    return env


def numerics() -> dict[str, str]:
    """What the manifest records about the pinned numerics of this run."""
    names = (
        "NPY_DISABLE_CPU_FEATURES",
        "OPENBLAS_CORETYPE",
        "OPENBLAS_NUM_THREADS",
        "OPENBLAS_L2_SIZE",
    )
    return {name: os.environ.get(name, "") for name in names}
