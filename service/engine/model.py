"""The trained text model: one canonical text form, the feature builder, the reference estimator.

Training (model/train.py) and inference (service/engine/pipeline.py) both go through this module,
so the text the model sees at inference is built exactly as it was in training:

    raw text -> service.engine.normalize.normalize -> mask_text -> character n-grams
    Analysis -> structured_features (rule hits, number types, number signals)

Serving scores a compiled form of the trained model (service/engine/scorer.py: numpy arrays, no
scikit-learn); `TextModel` here is the trained estimator, kept as the reference path for training,
evaluation and the equality tests. Reading and checking the artifact is service/engine/artifact.py.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from service.engine.analysis import Analysis
from service.engine.neighbours import Neighbours
from service.engine.normalize import normalize
from service.engine.schemas import CATEGORIES
from service.engine.sentence import EMBEDDING_DIM as SENTENCE_DIM

if TYPE_CHECKING:
    from scipy import sparse

# Bump when the artifact layout or the feature definition changes: old artifacts are refused.
# 6: the sentence embedding's columns between the n-grams and the structured features.
# 7: the n-gram-only first reader of the cascade (TextModel.fast) beside the full model.
# 8: the real rows' meaning neighbours (TextModel.neighbours) move the full model's scam odds.
FORMAT_VERSION = 8

# Masking tokens: one symbol each, so a character n-gram treats a whole URL or number as one unit.
# The public FBS corpus was anonymised with placeholders (URL, DIGIT, CELLPHONE, ...); masking our
# own texts the same way keeps the model from learning "has a real number" = "comes from a dataset".
TOKEN_URL = "Ⓤ"
TOKEN_MOBILE = "Ⓜ"
TOKEN_HOTLINE = "Ⓗ"
TOKEN_PHONE = "Ⓟ"
TOKEN_ID = "Ⓘ"  # a QQ number or WeChat id
TOKEN_DIGITS = "Ⓓ"
TOKENS = frozenset((TOKEN_URL, TOKEN_MOBILE, TOKEN_HOTLINE, TOKEN_PHONE, TOKEN_ID, TOKEN_DIGITS))

_TLD = (
    "com|cn|net|org|cc|top|xyz|vip|me|io|info|co|hk|tk|ly|gl|biz|club|site|online|app|link|shop|"
    "tv|ws|in|la|mobi|asia|wang|ink|pw|icu|fun|ren|store|work|live"
)
_URL = re.compile(
    r"(?:https?://|www\.)[^\s，。！？；、【】\u4e00-\u9fff]+"
    rf"|(?<![a-z0-9@.])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{_TLD})(?![a-z0-9-])"
    r"(?:[/?#][^\s，。！？；、【】\u4e00-\u9fff]*)?"
)
_SEP = r"[- ]?"
_MOBILE = re.compile(rf"(?<!\d)(?:\+?86{_SEP})?1[3-9]\d(?:{_SEP}\d){{8}}(?!\d)")
# Service numbers: 95/96 short codes, 400/800, carrier and public 10xxx/12xxx, 106 SMS ports.
# Not when followed by a unit of money: "12000元" is an amount, not a hotline.
_HOTLINE = re.compile(
    r"(?<![\d.])(?:0\d{2,3}[- ]?(?=9[56]))?"  # area code + 95xxx is still the short code
    r"(?:95\d{3,6}|96\d{3,6}|[48]00(?:[- ]?\d){7}|106\d{5,13}|10\d{3}|12\d{3})"
    r"(?![\d.,]|\s?[元块万千百])"
)
_LANDLINE = re.compile(rf"(?<!\d)(?:0\d{{2,3}}{_SEP})?[2-8]\d{{6,7}}(?![\d.,]|\s?[元块万千百])")
_QQ_ID = re.compile(r"qq\s*(?:号|群)?\s*[:=]?\s*[1-9]\d{4,11}")
_WECHAT_ID = re.compile(r"微信\s*(?:号)?\s*[:=]?\s*[a-z][a-z0-9_-]{4,19}(?![a-z0-9])")
_DIGITS = re.compile(r"\d+(?:[.,:/-]\d+)*")
# Template placeholders ({name}, ${amount}, #amount#, %s) and masks (xxx) that the sources put
# where a real message has a name or a figure. Lenders' templates in code carry the first kind and
# police quotes the second, so left in they would teach "has {name}" = genuine and "xxx" = scam,
# cues no message a person receives has. Removed before anything else sees the text.
_TEMPLATE_SLOT = re.compile(
    r"\$?\{\{[^{}]{0,40}\}\}|\$?\{[^{}]{0,40}\}|#[a-z_][a-z0-9_.]{0,30}#|%(?:\d\$)?[sd]"
    r"|(?<![a-z])x{2,}(?![a-z])"
)
_SLOT_MARKS = re.compile(r"[{#%]|xx")
_ANY_DIGIT = re.compile(r"\d")
_REPEATED = re.compile(r"(微信|qq)(?:\1)+")
# A space stays only between two Latin letters or digits (one pass in C, not a test per word).
_SPACE_NOT_BETWEEN_LATIN = re.compile(r"(?<![A-Za-z0-9]) | (?![A-Za-z0-9])")


def _is_kept(ch: str) -> bool:
    """Letters, digits and our tokens carry content; punctuation and symbols do not.

    Punctuation is dropped because FBS texts arrive with it removed: keeping it in the other
    sources would let the model tell the datasets apart by their commas.
    """
    if ch in TOKENS:
        return True
    category = unicodedata.category(ch)
    return category[0] in {"L", "N"} or ch == " "


class _KeptOrSpace(dict[int, str]):
    """str.translate table: every character `_is_kept` drops becomes a space, the rest stay.
    Filled on first sight of each character, so the per-character test runs once per process
    rather than once per character of every message."""

    def __missing__(self, point: int) -> str:
        ch = chr(point)
        self[point] = value = ch if _is_kept(ch) else " "
        return value


_KEPT_OR_SPACE = _KeptOrSpace()


def mask_text(normalized_text: str) -> str:
    """The canonical form the text model sees, from already-normalised text.

    URLs, mobile numbers, service numbers, landlines, QQ/WeChat ids and any other digit run become
    one token each; punctuation goes; whitespace survives only between two Latin words.
    """
    # A pattern whose required characters are absent cannot match: a test for them in C
    # spares a long message's whole regex scan.
    text = normalized_text
    if _SLOT_MARKS.search(text):
        text = _TEMPLATE_SLOT.sub("", text)
    text = _URL.sub(TOKEN_URL, text)
    if "qq" in text:
        text = _QQ_ID.sub("qq" + TOKEN_ID, text)
    if "微信" in text:
        text = _WECHAT_ID.sub("微信" + TOKEN_ID, text)
    if _ANY_DIGIT.search(text):
        text = _MOBILE.sub(TOKEN_MOBILE, text)
        text = _HOTLINE.sub(TOKEN_HOTLINE, text)
        text = _LANDLINE.sub(TOKEN_PHONE, text)
        text = _DIGITS.sub(TOKEN_DIGITS, text)
    words = " ".join(text.translate(_KEPT_OR_SPACE).split())
    return _REPEATED.sub(r"\1", _SPACE_NOT_BETWEEN_LATIN.sub("", words))


# Word features from a Chinese segmenter carry this prefix in the shared vocabulary, so that a
# two-character word and the same two-character n-gram stay two features.
WORD_PREFIX = "\x01"


# The Latin-letter word tokens of the canonical text (the char_latin_lr candidate, fitted in
# model/fit.py and served by service/engine/scorer.py): the canonical text is lower-cased, so
# this is every run of two or more ASCII letters.
LATIN_WORD_PATTERN = r"[a-z]{2,}"


def jieba_words(masked_text: str) -> list[str]:
    """Words of a canonical text (jieba, imported on first use: only word models need it)."""
    import logging as _logging

    import jieba

    jieba.setLogLevel(_logging.WARNING)
    return [word for word in jieba.lcut(masked_text) if word.strip()]


class CharWordVectorizer:
    """Character n-grams and word n-grams of the canonical text, in one vocabulary."""

    def __init__(self, chars: Any, words: Any) -> None:
        self.chars = chars
        self.words = words
        self.vocabulary_: dict[str, int] = {}
        self.stop_words_ = None

    def fit(self, texts: Sequence[str]) -> CharWordVectorizer:
        self.chars.fit(texts)
        self.words.fit(texts)
        for part in (self.chars, self.words):
            part.stop_words_ = None
            part.vocabulary_ = {term: int(col) for term, col in part.vocabulary_.items()}
        offset = len(self.chars.vocabulary_)
        vocabulary = dict(self.chars.vocabulary_)
        for term, column in self.words.vocabulary_.items():
            vocabulary[WORD_PREFIX + term] = offset + column
        self.vocabulary_ = vocabulary
        return self

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        from scipy import sparse

        return sparse.hstack(
            [self.chars.transform(texts), self.words.transform(texts)], format="csr"
        )


def canonical_text(raw_text: str) -> str:
    """Raw message text -> the canonical form (normalise, then mask)."""
    return mask_text(normalize(raw_text).text) if raw_text else ""


# ---------------------------------------------------------------------------------------------
# Structured features: rule hits and number facts, one named feature each, so that the weight the
# model learns for every rule is visible in the evaluation report.


def _kind(obj: Any, *names: str) -> str | None:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return str(getattr(value, "value", value))
    return None


def _duration_bucket(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds == 0:
        return "0"
    if seconds < 30:
        return "lt30"
    if seconds < 180:
        return "lt180"
    return "ge180"


def structured_features(analysis: Analysis) -> dict[str, float]:
    """Binary features from everything the pipeline found except the raw words."""
    record = analysis.record
    features: dict[str, float] = {f"kind:{record.kind}": 1.0}
    if not (record.text or "").strip():
        features["text:empty"] = 1.0
    if record.kind == "call":
        features[f"call:duration:{_duration_bucket(getattr(record, 'duration_s', None))}"] = 1.0
    sender = analysis.sender
    if sender is not None:
        features[f"sender:{_kind(sender, 'type') or 'unknown'}"] = 1.0
        if getattr(sender, "official", False):
            features["sender:official"] = 1.0
        if getattr(sender, "brand", None):
            features["sender:has_brand"] = 1.0
    if analysis.brands:
        # No feature for a 【brand】 signature: FBS texts lost their brackets, so it would mark
        # "not from FBS" rather than "genuine".
        features["brand:claimed"] = 1.0
    for contact in analysis.contacts:
        features[f"contact:{_kind(contact, 'kind', 'type') or 'unknown'}"] = 1.0
        if getattr(contact, "official", False):
            features["contact:official"] = 1.0
        info = getattr(contact, "info", None)
        if info is not None:
            features[f"contact_number:{_kind(info, 'type') or 'unknown'}"] = 1.0
    for signal in analysis.signals:
        if signal.source in {"rule", "numbers"}:
            features[f"{signal.source}:{signal.id}"] = 1.0
    return features


# Features that say something about the sender's number and nothing about the words.
SENDER_FEATURES = (
    "sender:",
    "numbers:international_sender",
    "numbers:official_sender",
    "numbers:virtual_mobile_sender",
)


def _squeeze(text: str) -> tuple[str, list[int]]:
    """Letters and digits of a normalised text, with each one's position in it."""
    where = [i for i, ch in enumerate(text) if ch.isalnum()]
    return "".join(text[i] for i in where), where


def _merge_spans(spans: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Overlapping n-gram spans become one phrase carrying their summed contribution."""
    if not spans:
        return []
    spans.sort()
    merged: list[tuple[int, int, float]] = []
    start, end, weight = spans[0]
    for next_start, next_end, next_weight in spans[1:]:
        if next_start < end:
            if next_end > end:
                end = next_end
            weight += next_weight
        else:
            merged.append((start, end, weight))
            start, end, weight = next_start, next_end, next_weight
    merged.append((start, end, weight))
    merged.sort(key=lambda item: -item[2])
    return [(int(start), int(end), float(weight)) for start, end, weight in merged]


@dataclass(frozen=True)
class Rows:
    """A CSR matrix as its three arrays (one TF-IDF row per text)."""

    data: np.ndarray  # float32
    indices: np.ndarray  # int64 columns, sorted within a row
    indptr: np.ndarray  # int64, len = rows + 1

    def row(self, number: int) -> Rows:
        start, end = int(self.indptr[number]), int(self.indptr[number + 1])
        return Rows(self.data[start:end], self.indices[start:end], np.array([0, end - start]))

    def take(self, numbers: np.ndarray) -> Rows:
        """The rows `numbers`, in that order."""
        starts, ends = self.indptr[numbers], self.indptr[numbers + 1]
        indptr = np.zeros(len(numbers) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=indptr[1:])
        # Each kept entry's position in the source arrays: its row's start plus its offset.
        offsets = np.arange(indptr[-1], dtype=np.int64) - np.repeat(indptr[:-1], ends - starts)
        gather = np.repeat(starts, ends - starts) + offsets
        return Rows(self.data[gather], self.indices[gather], indptr)


@dataclass(frozen=True)
class ModelInput:
    """What the model sees for one record: canonical text, named binary features and, for a
    model that reads one, the sentence embedding of the text as it was pasted
    (service/engine/sentence.py; `with_embeddings`)."""

    text: str
    features: dict[str, float] = field(default_factory=dict)
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Reading:
    """The model's reading of one analysis: its probabilities, the input that gave them and
    that input's TF-IDF text row (an explanation or a words-alone reading of the same analysis
    starts from them instead of masking and transforming the text again)."""

    probabilities: dict[str, float]
    input: ModelInput
    text: Rows
    # Read by the cascade's n-gram-only first reader (TextModel.fast), its verdict sure enough
    # that the sentence embedding was never computed.
    fast: bool = False
    # The full model's probabilities before the meaning neighbours moved them; None where no
    # neighbours read the message (the first reader's readings, a model without them).
    plain: dict[str, float] | None = None


def _by_category(row: np.ndarray) -> dict[str, float]:
    return {category: float(p) for category, p in zip(CATEGORIES, row, strict=True)}


def model_input(analysis: Analysis) -> ModelInput:
    """Build the model's input from a pipeline Analysis (same code in training and inference);
    a model that reads the sentence embedding adds it with `with_embeddings`."""
    text = mask_text(analysis.norm.text) if analysis.norm is not None else ""
    return ModelInput(text=text, features=structured_features(analysis))


def embedded_text(analysis: Analysis) -> str:
    """What the sentence embedding reads: the text as the person pasted it (the encoder was
    trained on ordinary sentences, not on the masked canonical form)."""
    return analysis.record.text or ""


def with_embeddings(inputs: Sequence[ModelInput], embeddings: np.ndarray) -> list[ModelInput]:
    """The inputs, each with its row of `embeddings` (same order)."""
    return [replace(item, embedding=row) for item, row in zip(inputs, embeddings, strict=True)]


def embedding_block(inputs: Sequence[ModelInput], scale: float) -> np.ndarray:
    """The embedding columns of the feature matrix, dense: each input's embedding times `scale`,
    in float32 as the TF-IDF columns beside it (an empty text's embedding is all zeros)."""
    block = np.zeros((len(inputs), SENTENCE_DIM), dtype=np.float32)
    for row, item in enumerate(inputs):
        if item.embedding is None:
            raise ValueError("this model reads the sentence embedding; the input has none")
        block[row] = item.embedding
    block *= np.float32(scale)
    return block


def embedding_matrix(inputs: Sequence[ModelInput], scale: float) -> sparse.csr_matrix:
    """`embedding_block` as a sparse matrix (its zeros left out, as in the other columns)."""
    from scipy import sparse

    return sparse.csr_matrix(embedding_block(inputs, scale))


def nonzero_features(matrix: Any, dense_columns: tuple[int, int] | None) -> np.ndarray:
    """Each row's count of non-zero features, the sentence embedding's columns left out: the
    calibrator weighs a reading by how many n-grams and facts were behind it, and every text
    has all 512 embedding values."""
    seen = matrix.getnnz(axis=1)
    if dense_columns is None:
        return seen
    start, stop = dense_columns
    return seen - matrix[:, start:stop].getnnz(axis=1)


class CalibratedLinear:
    """A linear classifier whose decision values are mapped to probabilities by a calibrator
    fitted on out-of-fold decision values (matrix scaling; see model/fit.py). The calibrator also
    sees how much the model read (calibration_inputs)."""

    def __init__(
        self, base: Any, calibrator: Any, dense_columns: tuple[int, int] | None = None
    ) -> None:
        self.base = base
        self.calibrator = calibrator
        self.classes_ = base.classes_
        # The sentence embedding's columns, left out of the feature count (nonzero_features).
        self.dense_columns = dense_columns

    def predict_proba(self, matrix: Any) -> np.ndarray:
        values = decision_values(self.base, matrix)
        seen = nonzero_features(matrix, getattr(self, "dense_columns", None))
        return self.calibrator.predict_proba(calibration_inputs(values, seen))


# A short message gives the model a few dozen n-grams, a full notice several hundred, and the same
# decision value is worth less on the short one: the calibrator sees the decision values, their
# products with the log of the row's feature count (centred here, ~55 features) and that log
# itself, so it can trust a reading more or less with the amount of text behind it. Measured on the
# grouped real evaluation (model/real_eval.py, 3,176 rows): scam flagged 84.5 -> 86.0 %, genuine
# flagged 6.7 -> 6.6 %, abusive recall 72.2 -> 73.1 %, everyday SMS flagged 5.8 -> 6.7 %; at a
# fixed 3 % of genuine rows flagged, 62 -> 64 % of scams. Squared terms as well gained nothing more.
EVIDENCE_CENTRE = 4.0


def calibration_inputs(values: np.ndarray, features_seen: Any) -> np.ndarray:
    """Decision values and each row's non-zero feature count -> the calibrator's inputs."""
    z = np.log1p(np.asarray(features_seen, dtype=np.float64)) - EVIDENCE_CENTRE
    z = z.reshape(-1, 1)
    return np.hstack([values, values * z, z])


def decision_values(estimator: Any, matrix: Any) -> np.ndarray:
    values = estimator.decision_function(matrix)
    return values[:, None] if values.ndim == 1 else values


class TextModel:
    """Character n-grams of the canonical text + structured features -> calibrated probabilities.

    Picklable; `version` is set by `load_model` from the manifest (it contains the artifact's own
    hash, so it cannot live inside the artifact).
    """

    def __init__(
        self,
        vectorizer: Any,
        feature_names: Sequence[str],
        classifier: Any,
        structured_scale: float = 1.0,
        embedding_scale: float = 0.0,
    ) -> None:
        self.vectorizer = vectorizer
        self.feature_names = tuple(feature_names)
        self.feature_index = {name: i for i, name in enumerate(self.feature_names)}
        self.classifier = classifier
        self.structured_scale = structured_scale
        # The sentence embedding's weight beside the n-grams; 0: the model does not read it.
        self.embedding_scale = embedding_scale
        self.categories = tuple(str(c) for c in classifier.classes_)
        # Rules too rare in the training data to learn a weight keep their hand-set YAML weight,
        # applied as a log-odds offset on their category: feature name -> (category, weight).
        self.handset: dict[str, tuple[str, float]] = {}
        # Published scam scripts from the real training rows (service/engine/known_scripts.py).
        self.scripts: Any = None
        # The rule and number files the training run parsed (service/engine/datafiles.py).
        self.data_files: dict[str, Any] | None = None
        self.version: str | None = None
        # The cascade (read_many): a model over the same n-grams and features without the
        # sentence embedding reads every message first; its reading stands when it is sure
        # (`fast_band`), and only the others pay for the embedding. None: no cascade.
        self.fast: TextModel | None = None
        self.fast_band: tuple[float, float] | None = None
        # The real training rows nearest in meaning move the full model's scam odds
        # (service/engine/neighbours.py); None: the model reads no embedding.
        self.neighbours: Neighbours | None = None
        # (terms by column, centred coefficients): derived from the vocabulary and the
        # classifier on first explanation, never pickled.
        self._explain: tuple[Any, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The explanation cache is rebuilt on first use. It is stored under its former name
        # `_terms`, as None, so artifacts keep the same bytes as before it was renamed.
        state = {
            ("_terms" if key == "_explain" else key): (None if key == "_explain" else value)
            for key, value in self.__dict__.items()
        }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("scripts", None)
        state.setdefault("data_files", None)
        state.setdefault("embedding_scale", 0.0)
        state.setdefault("fast", None)
        state.setdefault("fast_band", None)
        state.setdefault("neighbours", None)
        state.pop("_terms", None)
        state.setdefault("_explain", None)
        self.__dict__.update(state)

    def text_rows(self, texts: Sequence[str]) -> Rows:
        """The TF-IDF rows of masked texts (the text part of the feature matrix)."""
        matrix = self.vectorizer.transform(texts)
        return Rows(
            np.asarray(matrix.data),
            np.asarray(matrix.indices, dtype=np.int64),
            np.asarray(matrix.indptr, dtype=np.int64),
        )

    @property
    def reads_embedding(self) -> bool:
        return self.embedding_scale != 0

    @property
    def embedding_width(self) -> int:
        """Columns the sentence embedding takes between the n-grams and the structured
        features (0 when the model does not read it)."""
        return SENTENCE_DIM if self.reads_embedding else 0

    def inputs_of(self, analyses: Sequence[Analysis]) -> list[ModelInput]:
        """The full model's input for each analysis, the sentence embedding included when it
        reads one (`read_many` embeds only what the cascade's first reader left unsure)."""
        return self.embed(analyses, [model_input(analysis) for analysis in analyses])

    def embed(self, analyses: Sequence[Analysis], inputs: list[ModelInput]) -> list[ModelInput]:
        """The inputs with their sentence embeddings when the model reads them (one batch)."""
        if not self.reads_embedding:
            return inputs
        texts = [embedded_text(analysis) for analysis in analyses]
        if not any(text.strip() for text in texts):  # call records: no encoder to load
            return with_embeddings(inputs, np.zeros((len(texts), SENTENCE_DIM), np.float32))
        from service.engine.sentence import shared_encoder

        return with_embeddings(inputs, shared_encoder().encode(texts))

    def matrix(self, inputs: Sequence[ModelInput], text: Rows | None = None) -> sparse.csr_matrix:
        # scipy is imported here, not at the top: serving (the compiled scorer) never needs it,
        # and importing it costs a `dunscan check` process about 0.3 s.
        from scipy import sparse

        if text is None:
            text_part = self.vectorizer.transform([item.text for item in inputs])
        else:
            width = len(self.vectorizer.vocabulary_)
            text_part = sparse.csr_matrix(
                (text.data, text.indices, text.indptr), shape=(len(inputs), width)
            )
        blocks = [text_part]
        if self.reads_embedding:
            blocks.append(embedding_matrix(inputs, self.embedding_scale))
        blocks.append(structured_matrix(inputs, self.feature_index, self.structured_scale))
        return sparse.hstack(blocks, format="csr")

    def _raw_proba(self, inputs: Sequence[ModelInput], text: Rows | None = None) -> np.ndarray:
        """Calibrated probabilities in the order of `self.categories` (the reference path:
        scikit-learn; service/engine/scorer.py computes the same numbers from arrays)."""
        return self.classifier.predict_proba(self.matrix(inputs, text))

    def predict_inputs(
        self, inputs: Sequence[ModelInput], text: Rows | None = None, neighbours: bool = True
    ) -> np.ndarray:
        """Probabilities, one row per input, columns in CATEGORIES order. `text`, the inputs'
        TF-IDF rows when the caller has them (`text_rows`), saves transforming the texts.
        `neighbours`: whether the meaning neighbours, if the model has them, move the scam odds."""
        raw = self._raw_proba(inputs, text)
        # A category absent from the training rows (possible in evaluation splits) gets 0.
        proba = np.zeros((raw.shape[0], len(CATEGORIES)))
        for column, category in enumerate(self.categories):
            proba[:, CATEGORIES.index(category)] = raw[:, column]
        if self.handset:
            proba = self._apply_handset(inputs, proba)
        if neighbours and self.neighbours is not None:
            proba = self._moved_by_neighbours(proba, inputs)
        return proba

    def _moved_by_neighbours(self, proba: np.ndarray, inputs: Sequence[ModelInput]) -> np.ndarray:
        """The full model's probabilities with the scam odds moved by the meaning neighbours."""
        assert self.neighbours is not None
        embeddings = [item.embedding for item in inputs]
        return self.neighbours.adjust(proba, embeddings, CATEGORIES.index("scam"))

    def _apply_handset(self, inputs: Sequence[ModelInput], proba: np.ndarray) -> np.ndarray:
        adjusted = proba.copy()
        for row, item in enumerate(inputs):
            for name in item.features:
                if name in self.handset:
                    category, weight = self.handset[name]
                    adjusted[row, CATEGORIES.index(category)] *= float(np.exp(weight))
        return adjusted / adjusted.sum(axis=1, keepdims=True)

    def learned_weight(
        self, feature: str, category: str, *, include_handset: bool = False
    ) -> float | None:
        """The learned coefficient of a binary feature toward a category, per unit of feature.

        None when the feature is unknown to the model, or keeps its hand-set weight because the
        training data was too thin (unless `include_handset`, for reports showing both).
        """
        index = self.feature_index.get(feature)
        if index is None or category not in self.categories:
            return None
        if feature in self.handset and not include_handset:
            return None
        base = self.classifier.base
        column = len(self.vectorizer.vocabulary_) + self.embedding_width + index
        row = self.categories.index(category)
        return float(base.coef_[row, column]) * self.structured_scale

    def predict(self, analysis: Analysis) -> dict[str, float]:
        return self.predict_many([analysis])[0]

    def predict_many(self, analyses: Sequence[Analysis]) -> list[dict[str, float]]:
        """One probability per category for each analysis: one transform, one product."""
        return [reading.probabilities for reading in self.read_many(analyses)]

    def read_many(self, analyses: Sequence[Analysis]) -> list[Reading]:
        """`predict_many`, each result with the TF-IDF row of its text.

        With a cascade (`fast`), the n-gram-only reader reads every analysis first; where it is
        sure (`is_sure`) its reading stands, and only the rest are embedded and read by the full
        model. Each analysis is read alone in both, so its reading never depends on the batch."""
        if not analyses:  # scikit-learn refuses an empty matrix
            return []
        inputs = [model_input(analysis) for analysis in analyses]
        text = self.text_rows([item.text for item in inputs])
        sure = np.zeros(len(inputs), dtype=bool)
        rows = np.zeros((len(inputs), len(CATEGORIES)))
        if self.fast is not None:
            rows = self.fast.predict_inputs(inputs, text)
            sure = self.is_sure(rows)
        unsure = np.flatnonzero(~sure)
        plain: dict[int, dict[str, float]] = {}
        if len(unsure):
            picked = self.embed([analyses[i] for i in unsure], [inputs[i] for i in unsure])
            full = self.predict_inputs(
                picked, text if len(unsure) == len(inputs) else text.take(unsure), False
            )
            rows[unsure] = full
            if self.neighbours is not None:
                rows[unsure] = self._moved_by_neighbours(full, picked)
                plain = {
                    number: _by_category(row)
                    for number, row in zip(unsure.tolist(), full, strict=True)
                }
            for number, item in zip(unsure.tolist(), picked, strict=True):
                inputs[number] = item
        return [
            Reading(
                _by_category(row), item, text.row(number), bool(sure[number]), plain.get(number)
            )
            for number, (item, row) in enumerate(zip(inputs, rows, strict=True))
        ]

    def is_sure(self, fast_rows: np.ndarray) -> np.ndarray:
        """Which of the fast reader's readings (rows in CATEGORIES order) stand: clearly
        neither scam nor abusive, or clearly a scam. A leaning to abusive, and every reading in
        between, goes on to the full model."""
        if self.fast_band is None:
            return np.zeros(len(fast_rows), dtype=bool)
        low, high = self.fast_band
        scam = fast_rows[:, CATEGORIES.index("scam")]
        abusive = fast_rows[:, CATEGORIES.index("abusive")]
        return ((scam <= low) & (abusive <= low)) | (scam >= high)

    def reader_of(self, reading: Reading) -> TextModel:
        """The model that gave `reading`: explanations and words-alone readings of it come
        from the same weights."""
        return self.fast if reading.fast and self.fast is not None else self

    def predict_text_only(
        self, analysis: Analysis, full: Reading | None = None, neighbours: bool = True
    ) -> dict[str, float]:
        """The reading of the words alone: what the sender's number adds is left out.

        `full`, the reading with the sender (`read_many`): its probabilities come back as they
        are when the sender added no feature (the same input gives the same numbers), and its
        input and text row are reused when it did. The words go through the cascade as a
        message without a sender would, so the two readings of the same words agree: a sure
        first reading with the sender says nothing of how sure the first reader is without it.
        `neighbours`: whether the meaning neighbours move the full model's reading."""
        if full is None:
            (full,) = self.read_many([analysis])
        item = full.input
        kept = {k: v for k, v in item.features.items() if not k.startswith(SENDER_FEATURES)}
        if len(kept) == len(item.features):
            return full.plain if not neighbours and full.plain is not None else full.probabilities
        words = replace(item, features=kept)
        row = None
        if self.fast is not None:
            fast_row = self.fast.predict_inputs([words], full.text)
            if self.is_sure(fast_row)[0]:
                row = fast_row[0]
        if row is None:
            if self.reads_embedding and words.embedding is None:
                (words,) = self.embed([analysis], [words])
            row = self.predict_inputs([words], full.text, neighbours)[0]
        return _by_category(row)

    def _explainer(self) -> tuple[Any, np.ndarray]:
        """Terms by column and coefficients centred over the categories (softmax is unchanged
        by a common shift), computed once per process rather than once per explanation."""
        if self._explain is None:
            terms = [""] * (max(self.vectorizer.vocabulary_.values(), default=-1) + 1)
            for term, column in self.vectorizer.vocabulary_.items():
                terms[column] = term
            coef = self.classifier.base.coef_
            self._explain = (terms, coef - coef.mean(axis=0))
        return self._explain

    def phrases(
        self, analysis: Analysis, category: str, text: Rows | None = None
    ) -> list[tuple[int, int, float]]:
        """Spans of the normalised text whose n-grams pushed the model most toward `category`:
        (start, end, summed contribution), strongest first. A linear model's contribution of an
        n-gram is its TF-IDF value times its coefficient for the category, centred over the
        categories (softmax is unchanged by a common shift). `text`: the text's TF-IDF row if
        the caller has it (`Reading.text`)."""
        norm = analysis.norm
        if norm is None or category not in self.categories:
            return []
        terms, centred_by_category = self._explainer()
        centred = centred_by_category[self.categories.index(category)]
        # The TF-IDF row of the shared vocabulary (character and, if any, word n-grams).
        row = text if text is not None else self.text_rows([mask_text(norm.text)])
        squeezed, where = _squeeze(norm.text)
        spans: list[tuple[int, int, float]] = []
        # Each n-gram's contribution, value times centred coefficient in double (as Python
        # floats multiply them); only those pushing toward the category have their terms
        # decoded (the compiled model decodes a term from its key), in one step where it can.
        indices = np.asarray(row.indices)
        weights = np.asarray(row.data, dtype=np.float64) * centred[indices].astype(np.float64)
        pushing = np.flatnonzero(weights > 0)
        columns = indices[pushing].tolist()
        many = getattr(terms, "many", None)
        names = many(columns) if many is not None else [terms[column] for column in columns]
        # A term is shown where its letters and digits stand in the squeezed text ("a b", a
        # character n-gram across a space, stands where "ab" does). Rather than search for each
        # of a long message's hundreds of pushing n-grams, each two- and three-character
        # substring of the squeezed text is looked up once; longer terms (words) are searched.
        shown = [name.removeprefix(WORD_PREFIX).replace(" ", "") for name in names]
        pushes = weights[pushing].tolist()
        weights_of: dict[str, list[float]] = {}
        for term, weight in zip(shown, pushes, strict=True):
            weights_of.setdefault(term, []).append(weight)
        lookup = weights_of.get
        for size in (2, 3):
            last = size - 1
            grams = [squeezed[start : start + size] for start in range(len(squeezed) - last)]
            for start, found in enumerate(map(lookup, grams)):
                if found:
                    for weight in found:
                        spans.append((where[start], where[start + last] + 1, weight))
        for term, term_weights in weights_of.items():
            # Only letters and digits can be shown as a span; a masking token is neither.
            if len(term) <= 3 or not term.isalnum():
                continue
            start = squeezed.find(term)
            while start >= 0:
                for weight in term_weights:
                    spans.append((where[start], where[start + len(term) - 1] + 1, weight))
                start = squeezed.find(term, start + 1)
        return _merge_spans(spans)


def structured_matrix(
    inputs: Iterable[ModelInput], feature_index: dict[str, int], scale: float = 1.0
) -> sparse.csr_matrix:
    """Named features -> a sparse matrix in the trained order; unknown names are ignored."""
    from scipy import sparse

    rows: list[int] = []
    cols: list[int] = []
    count = 0
    for row, item in enumerate(inputs):
        count = row + 1
        for name in item.features:
            column = feature_index.get(name)
            if column is not None:
                rows.append(row)
                cols.append(column)
    data = np.full(len(rows), scale, dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(count, len(feature_index)))
