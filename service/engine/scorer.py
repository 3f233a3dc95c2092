"""The compiled scorer: the trained text model as plain numpy arrays, scored without scikit-learn.

Training (model/train.py) fits a scikit-learn `TextModel`; `compile_model` turns it into the
numbers that define it, and those numbers are what the artifact holds and what serving runs:

    vocabulary    sorted n-gram keys (uint64) + the column of each (np.searchsorted, no dict)
    TF-IDF        idf per column; sublinear tf, multiply, l2 row norm reproduced operation by
                  operation in float32 as scikit-learn does them (same bits, not just close)
    classifier    coef (columns x categories) and intercept: a sparse dot product
    calibrator    matrix scaling (coef, intercept) and a softmax over the decision values and
                  the row's feature count (model.calibration_inputs)

Per row, the arithmetic does not depend on the other rows of a batch, so `check` (a batch of one)
and `check_many` give the same bits. tests/test_scorer.py holds the compiled scorer to the
trained estimator (1e-9) on every corpus and real row.

The artifact is a zip of .npy arrays written with fixed timestamps (same inputs, same bytes),
loaded with `allow_pickle=False`: nothing in it can run code.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.engine.known_scripts import ARRAY_NAMES as SCRIPT_ARRAYS
from service.engine.known_scripts import KnownScripts, Script
from service.engine.model import (
    LATIN_WORD_PATTERN,
    WORD_PREFIX,
    CharWordVectorizer,
    ModelInput,
    Rows,
    TextModel,
    calibration_inputs,
    embedding_block,
)
from service.engine.neighbours import Neighbours
from service.engine.neighbours import Settings as NeighbourSettings
from service.engine.npz import write_npz
from service.engine.sentence import encoder_id

# Changes whenever the arrays or their meaning change (service.engine.model.FORMAT_VERSION
# follows it). A model with Latin-letter word n-grams writes WORD_ARRAYS_VERSION: its word
# arrays must not be read by code that would ignore them.
# 5 and 6: the known scripts' shingles moved from the JSON metadata to arrays.
# 7 and 8: the real rows' meaning neighbours (neighbours_*).
ARRAYS_VERSION = 7
WORD_ARRAYS_VERSION = 8
# sklearn's char analyzer collapses whitespace runs before taking n-grams.
_WHITE_SPACES = re.compile(r"\s\s+")
# Zip entries carry this date (the earliest a zip can hold): the bytes depend on the arrays only.


class NotCompilable(ValueError):
    """The trained model uses a feature builder or learner the compiled scorer does not cover."""


# An n-gram of at most three characters is one uint64: each code point (21 bits) in its slot,
# first character highest, absent characters 0 (no vocabulary term holds a NUL). The vocabulary
# is the sorted array of these keys; a text's n-grams become keys in a few vectorised steps, with
# no Python string per n-gram and no dict.
_BITS = 21
_MAX_CHARS = 3
_CHAR_MASK = (1 << _BITS) - 1
_SHIFTS = tuple(_BITS * (_MAX_CHARS - 1 - slot) for slot in range(_MAX_CHARS))


def ngram_key(term: str) -> int:
    """The uint64 key of an n-gram (one to three characters, none of them NUL)."""
    if not 1 <= len(term) <= _MAX_CHARS or "\0" in term:
        raise NotCompilable(f"n-gram of {len(term)} characters cannot be keyed")
    key = 0
    for slot, ch in enumerate(term):
        key |= ord(ch) << (_BITS * (_MAX_CHARS - 1 - slot))
    return key


class CompiledVectorizer:
    """TfidfVectorizer(analyzer="char", sublinear_tf=True, norm="l2") from its arrays."""

    def __init__(
        self, keys: np.ndarray, columns: np.ndarray, idf: np.ndarray, ngram_range: tuple[int, int]
    ) -> None:
        self.keys = keys  # sorted uint64 n-gram keys
        self.columns = columns  # column of keys[i]
        self.idf = idf  # float32, by column
        self.ngram_range = ngram_range
        self.n_features = len(idf)

    def _ngram_keys(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every character n-gram of every text as (key, row), as sklearn's `_char_ngrams`
        takes them (whitespace runs collapsed first; lowercase=False needs no other step)."""
        texts = [_WHITE_SPACES.sub(" ", text) for text in texts]
        joined = "".join(texts).encode("utf-32-le", "surrogatepass")
        points = np.frombuffer(joined, dtype="<u4").astype(np.uint64)
        # One text (a `check`) has no boundaries to respect: no owner array, no masks.
        single = len(texts) == 1
        owner = None if single else np.repeat(np.arange(len(texts)), [len(t) for t in texts])
        keys, rows = [], []
        low, high = self.ngram_range
        for n in range(low, high + 1):
            count = len(points) - n + 1
            if count <= 0:
                break
            key = points[:count] << np.uint64(_BITS * (_MAX_CHARS - 1))
            for offset in range(1, n):
                shift = np.uint64(_BITS * (_MAX_CHARS - 1 - offset))
                key = key | (points[offset : offset + count] << shift)
            if owner is None:
                keys.append(key)
                continue
            inside = owner[:count] == owner[n - 1 : n - 1 + count]  # not across two texts
            keys.append(key[inside])
            rows.append(owner[:count][inside])
        if not keys:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        all_keys = np.concatenate(keys)
        if owner is None:
            return all_keys, np.zeros(len(all_keys), dtype=np.int64)
        return all_keys, np.concatenate(rows)

    def transform(self, texts: Sequence[str]) -> Rows:
        """TF-IDF rows, bit for bit what the fitted TfidfVectorizer returns."""
        keys, rows = self._ngram_keys(texts)
        if len(texts) == 1:
            rows, columns, tf = self._counts_of_one(keys)
        else:
            position = np.searchsorted(self.keys, keys)
            position[position == len(self.keys)] = 0
            known = self.keys[position] == keys
            columns = self.columns[position[known]].astype(np.int64)
            rows = rows[known]
            # One entry per (row, column), sorted as CountVectorizer sorts its indices.
            merged, tf = np.unique(rows * self.n_features + columns, return_counts=True)
            rows, columns = np.divmod(merged, self.n_features)
        return _tfidf_rows(rows, columns, tf, len(texts), self.idf)

    def _counts_of_one(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns, counts) of one text's n-gram keys, columns ascending: the same
        entries as the batch path, in fewer steps (each n-gram looked up once, and with sorted
        keys, so each vocabulary search starts where the last one ended)."""
        keys, tf = np.unique(keys, return_counts=True)
        position = np.searchsorted(self.keys, keys)
        np.minimum(position, len(self.keys) - 1, out=position)
        known = self.keys[position] == keys
        columns = self.columns[position[known]].astype(np.int64)
        order = np.argsort(columns)
        return np.zeros(len(order), dtype=np.int64), columns[order], tf[known][order]

    def terms_by_column(self) -> list[str]:
        """The n-gram of every column (for explanations), decoded from the keys."""
        slots = [
            (self.keys >> np.uint64(_BITS * (_MAX_CHARS - 1 - slot))) & np.uint64(_CHAR_MASK)
            for slot in range(_MAX_CHARS)
        ]
        # Code points side by side are UTF-32: a fixed-width string array (NUL padding drops).
        points = np.stack(slots, axis=1).astype("<u4")
        terms = points.view(f"<U{_MAX_CHARS}").ravel().tolist()
        by_column = [""] * self.n_features
        for term, column in zip(terms, self.columns.tolist(), strict=True):
            by_column[column] = term
        return by_column


def _tfidf_rows(
    rows: np.ndarray, columns: np.ndarray, tf: np.ndarray, count: int, idf: np.ndarray
) -> Rows:
    """TfidfTransformer(sublinear_tf=True, norm="l2") on (row, column, count) entries sorted by
    row then column, bit for bit as scikit-learn computes it."""
    data = tf.astype(np.float32)
    # TfidfTransformer.transform: log in place, +1, times idf, all in float32...
    np.log(data, data)
    data += 1.0
    data *= idf[columns]
    # ...then sklearn's inplace_csr_row_normalize_l2: float32 squares summed in order into a
    # double (np.bincount adds its weights in order), each value divided in double and
    # stored back as float32.
    squares = (data * data).astype(np.float64)
    norms = np.sqrt(np.bincount(rows, weights=squares, minlength=count))
    with np.errstate(divide="ignore", invalid="ignore"):
        data = (data.astype(np.float64) / norms[rows]).astype(np.float32)
    indptr = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=count), out=indptr[1:])
    return Rows(data, columns, indptr)


class CompiledWordVectorizer:
    """TfidfVectorizer(analyzer="word", token_pattern=LATIN_WORD_PATTERN, ngram_range=(1, n),
    sublinear_tf=True, norm="l2") from its arrays: the terms sorted as a fixed-width string
    array (np.searchsorted, no dict) with the column of each."""

    def __init__(
        self, terms: np.ndarray, columns: np.ndarray, idf: np.ndarray, ngram_range: tuple[int, int]
    ) -> None:
        self.terms = terms  # sorted, dtype <U{longest}
        self.columns = columns
        self.idf = idf
        self.ngram_range = ngram_range
        self.n_features = len(idf)
        self._token = re.compile(LATIN_WORD_PATTERN)

    def _ngrams(self, text: str) -> list[str]:
        # sklearn's _word_ngrams: the tokens themselves, then each longer n-gram joined by " ".
        tokens = self._token.findall(text)
        low, high = self.ngram_range
        grams = list(tokens) if low == 1 else []
        for n in range(max(low, 2), high + 1):
            grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return grams

    def transform(self, texts: Sequence[str]) -> Rows:
        if not any(self._token.search(text) for text in texts):  # most Chinese messages
            return Rows(
                np.zeros(0, dtype=np.float32),
                np.zeros(0, dtype=np.int64),
                np.zeros(len(texts) + 1, dtype=np.int64),
            )
        width = self.terms.dtype.itemsize // 4
        grams: list[str] = []
        owners: list[int] = []
        for row, text in enumerate(texts):
            found = [gram for gram in self._ngrams(text) if len(gram) <= width]
            grams.extend(found)
            owners.extend([row] * len(found))
        if grams and len(self.terms):
            queries = np.array(grams, dtype=self.terms.dtype)
            position = np.searchsorted(self.terms, queries)
            position[position == len(self.terms)] = 0
            known = self.terms[position] == queries
            columns = self.columns[position[known]].astype(np.int64)
            rows = np.array(owners, dtype=np.int64)[known]
        else:
            columns = rows = np.zeros(0, dtype=np.int64)
        merged, tf = np.unique(rows * self.n_features + columns, return_counts=True)
        rows, columns = np.divmod(merged, self.n_features)
        return _tfidf_rows(rows, columns, tf, len(texts), self.idf)


class CompiledCharWordVectorizer:
    """model.CharWordVectorizer from arrays: each row's character columns, then its word columns
    after them, as scipy's hstack lays the two matrices side by side."""

    def __init__(self, chars: CompiledVectorizer, words: CompiledWordVectorizer) -> None:
        self.chars = chars
        self.words = words
        self.n_features = chars.n_features + words.n_features

    @property
    def ngram_range(self) -> tuple[int, int]:
        return self.chars.ngram_range

    def transform(self, texts: Sequence[str]) -> Rows:
        chars, words = self.chars.transform(texts), self.words.transform(texts)
        if not len(words.data):  # no known word: the character rows are the whole matrix
            return chars
        count = len(texts)
        char_rows = np.repeat(np.arange(count, dtype=np.int64), np.diff(chars.indptr))
        word_rows = np.repeat(np.arange(count, dtype=np.int64), np.diff(words.indptr))
        # A stable sort by row keeps every row's character entries before its word entries.
        order = np.argsort(np.concatenate([char_rows, word_rows]), kind="stable")
        data = np.concatenate([chars.data, words.data])[order]
        indices = np.concatenate([chars.indices, words.indices + self.chars.n_features])[order]
        indptr = chars.indptr + words.indptr
        return Rows(data, indices, indptr)


class TermsByColumn:
    """`terms[column]`: the n-gram of a column, decoded from its key when an explanation asks
    for it. A list of all 150,000 terms, as `terms_by_column` gives, held ~15 MB of Python
    strings in every server process, for the few dozen columns one explanation reads."""

    def __init__(self, vectorizer: CompiledVectorizer) -> None:
        self.keys = vectorizer.keys
        # Where each column's key sits in the sorted keys (every column has exactly one).
        self.position = np.zeros(vectorizer.n_features, dtype=np.int32)
        self.position[vectorizer.columns] = np.arange(len(vectorizer.columns), dtype=np.int32)

    def __len__(self) -> int:
        return len(self.position)

    def many(self, columns: Sequence[int]) -> list[str]:
        """`[self[column] for column in columns]`, decoded in a few array steps."""
        keys = self.keys[self.position[np.asarray(columns, dtype=np.int64)]]
        slots = [(keys >> np.uint64(shift)) & np.uint64(_CHAR_MASK) for shift in _SHIFTS]
        # Code points side by side are UTF-32; a shorter n-gram's NUL padding drops.
        points = np.stack(slots, axis=1).astype("<u4")
        return points.view(f"<U{_MAX_CHARS}").ravel().tolist()

    def __getitem__(self, column: int) -> str:
        key = self.keys.item(self.position.item(column))
        # Left-aligned code points; a shorter n-gram pads its tail slots with 0 (ngram_key).
        return "".join(
            [chr(point) for point in ((key >> shift) & _CHAR_MASK for shift in _SHIFTS) if point]
        )


class CharWordTerms:
    """`terms[column]` across a character-and-word vocabulary: word terms carry WORD_PREFIX, as
    in model.CharWordVectorizer's vocabulary."""

    def __init__(self, vectorizer: CompiledCharWordVectorizer) -> None:
        self.chars = TermsByColumn(vectorizer.chars)
        self.offset = vectorizer.chars.n_features
        words = vectorizer.words
        self.terms = words.terms
        self.position = np.zeros(words.n_features, dtype=np.int32)
        self.position[words.columns] = np.arange(len(words.columns), dtype=np.int32)

    def __len__(self) -> int:
        return self.offset + len(self.position)

    def many(self, columns: Sequence[int]) -> list[str]:
        """`[self[column] for column in columns]`: the character terms decoded in one step."""
        wanted = np.asarray(columns, dtype=np.int64)
        is_word = wanted >= self.offset
        if not is_word.any():
            return self.chars.many(wanted)
        found = np.empty(len(wanted), dtype=object)
        found[~is_word] = self.chars.many(wanted[~is_word])
        words = self.terms[self.position[wanted[is_word] - self.offset]].tolist()
        found[is_word] = [WORD_PREFIX + word for word in words]
        return found.tolist()

    def __getitem__(self, column: int) -> str:
        if column < self.offset:
            return self.chars[column]
        return WORD_PREFIX + str(self.terms[self.position[column - self.offset]])


class CompiledModel(TextModel):
    """A `TextModel` scored from arrays: same probabilities, no scikit-learn at serving time."""

    def __init__(
        self,
        vectorizer: CompiledVectorizer,
        feature_names: Sequence[str],
        categories: Sequence[str],
        coef: np.ndarray,
        intercept: np.ndarray,
        calibration_coef: np.ndarray,
        calibration_intercept: np.ndarray,
        structured_scale: float,
        embedding_scale: float = 0.0,
    ) -> None:
        self.vectorizer = vectorizer
        self.feature_names = tuple(feature_names)
        self.feature_index = {name: i for i, name in enumerate(self.feature_names)}
        self.categories = tuple(categories)
        self.coef = coef  # (categories, columns), as LogisticRegression.coef_
        # (columns, categories): a view, not a copy (2.4 MB less in every process); gathering a
        # message's ~150 columns from it costs nothing measurable.
        self.weights = coef.T
        self.intercept = intercept
        self.calibration_coef = calibration_coef
        self.calibration_intercept = calibration_intercept
        self.structured_scale = structured_scale
        self.embedding_scale = embedding_scale
        self.classifier = None
        self.handset: dict[str, tuple[str, float]] = {}
        self.scripts: Any = None
        # The training run's parsed rule and number files: {"rules": ..., "numbers": ...}, each
        # a DataFiles snapshot (service/engine/datafiles.py).
        self.data_files: dict[str, Any] | None = None
        self.version: str | None = None
        # The rule files the training run loaded with every check (RuleSet.load's
        # verified_version); set from the manifest by artifact.load_model.
        self.rules_version: str | None = None
        # The cascade's n-gram-only first reader and when it is sure (TextModel.read_many).
        self.fast: CompiledModel | None = None
        self.fast_band: tuple[float, float] | None = None
        self.neighbours: Neighbours | None = None
        self._explain: tuple[Any, np.ndarray] | None = None

    # -- scoring ------------------------------------------------------------------------------

    def text_rows(self, texts: Sequence[str]) -> Rows:
        return self.vectorizer.transform(texts)

    def decision_values(self, inputs: Sequence[ModelInput]) -> np.ndarray:
        """The base classifier's decision values: X @ coef.T + intercept, X never built."""
        return self._decision(inputs)[0]

    def _decision(
        self, inputs: Sequence[ModelInput], text: Rows | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decision values and each row's count of non-zero features (the matrix's getnnz)."""
        if text is None:
            text = self.vectorizer.transform([item.text for item in inputs])
        width = self.embedding_width
        offset = self.vectorizer.n_features + width
        scale = np.float32(self.structured_scale)
        s_rows: list[int] = []
        s_columns: list[int] = []
        for row, item in enumerate(inputs):
            known = sorted(
                self.feature_index[name] for name in item.features if name in self.feature_index
            )
            s_rows.extend([row] * len(known))
            s_columns.extend(offset + column for column in known)
        # The feature count the calibrator reads leaves the embedding out (nonzero_features).
        seen = np.diff(text.indptr) + np.bincount(
            np.array(s_rows, dtype=np.int64), minlength=len(inputs)
        )
        e_rows = e_columns = e_values = np.zeros(0, dtype=np.int64)
        if width:
            # A sparse matrix's order: row by row, columns ascending, zeros left out.
            block = embedding_block(inputs, self.embedding_scale)
            e_rows, e_columns = np.nonzero(block)
            e_values = block[e_rows, e_columns]
            e_columns = self.vectorizer.n_features + e_columns
        text_rows = np.repeat(np.arange(len(inputs), dtype=np.int64), np.diff(text.indptr))
        # Per row: the text columns, the embedding's, then the structured ones (the hstack's
        # order); a stable sort by row keeps that order within each row.
        rows = np.concatenate([text_rows, e_rows, np.array(s_rows, dtype=np.int64)])
        columns = np.concatenate([text.indices, e_columns, np.array(s_columns, dtype=np.int64)])
        values = np.concatenate(
            [
                text.data,
                np.asarray(e_values, dtype=np.float32),
                np.full(len(s_rows), scale, dtype=np.float32),
            ]
        )
        # scipy's csr_matvecs, which scikit-learn's decision_function runs: per row, in column
        # order, y += x * w in the common dtype of X and coef (float32 when the model was fitted
        # on float32 TF-IDF).
        dtype = np.result_type(values.dtype, self.weights.dtype)
        decision = np.zeros((len(inputs), len(self.categories)), dtype=dtype)
        if len(inputs) == 1:
            # One row: its columns are already in order; a cumulative sum adds them one after
            # the other from the first, as the loop does.
            products = values.astype(dtype)[:, None] * self.weights[columns]
            if len(products):
                decision[0] = np.cumsum(products, axis=0)[-1]
            return decision + self.intercept, seen
        order = np.argsort(rows, kind="stable")
        rows, columns = rows[order], columns[order]
        products = values[order].astype(dtype)[:, None] * self.weights[columns]
        # np.add.at adds unbuffered and in order, so the bits agree.
        np.add.at(decision, rows, products)
        return decision + self.intercept, seen

    def _raw_proba(self, inputs: Sequence[ModelInput], text: Rows | None = None) -> np.ndarray:
        decision, seen = self._decision(inputs, text)
        values = calibration_inputs(decision.astype(np.float64), seen)
        coef, intercept = self.calibration_coef, self.calibration_intercept
        # Matrix scaling, one term at a time so a row's result never depends on the batch.
        scores = np.zeros((len(inputs), coef.shape[0]))
        for j in range(coef.shape[1]):
            scores += values[:, j : j + 1] * coef[:, j]
        scores += intercept
        # sklearn.utils.extmath.softmax
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

    def matrix(self, inputs: Sequence[ModelInput], text: Rows | None = None) -> Any:
        raise NotImplementedError("the compiled model never builds the feature matrix")

    def learned_weight(
        self, feature: str, category: str, *, include_handset: bool = False
    ) -> float | None:
        index = self.feature_index.get(feature)
        if index is None or category not in self.categories:
            return None
        if feature in self.handset and not include_handset:
            return None
        column = self.vectorizer.n_features + self.embedding_width + index
        row = self.categories.index(category)
        return float(self.coef[row, column]) * self.structured_scale

    def _explainer(self) -> tuple[Any, Any]:
        if self._explain is None:
            terms = (
                CharWordTerms(self.vectorizer)
                if isinstance(self.vectorizer, CompiledCharWordVectorizer)
                else TermsByColumn(self.vectorizer)
            )
            self._explain = (terms, CentredCoefficients(self.coef))
        return self._explain


class CentredCoefficients:
    """`(coef - coef.mean(axis=0))[row][columns]` for the columns an explanation reads, instead
    of the whole centred matrix (2.4 MB in every process). The mean over the categories adds
    each column's few values in the same order either way, so the numbers are the same."""

    def __init__(self, coef: np.ndarray) -> None:
        self.coef = coef

    def __getitem__(self, row: int) -> _CentredRow:
        return _CentredRow(self.coef, row)


class _CentredRow:
    def __init__(self, coef: np.ndarray, row: int) -> None:
        self.coef = coef
        self.row = row

    def __getitem__(self, columns: np.ndarray) -> np.ndarray:
        block = self.coef[:, columns]
        return block[self.row] - block.mean(axis=0)


# ---------------------------------------------------------------------------------------------
# From the trained estimator


def compile_model(model: TextModel) -> CompiledModel:
    """The arrays of a trained char-n-gram TextModel (and of its cascade's first reader);
    NotCompilable for other builders."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = model.vectorizer
    words = None
    if isinstance(vectorizer, CharWordVectorizer):
        vectorizer, words = vectorizer.chars, vectorizer.words
        if (
            type(words) is not TfidfVectorizer
            or words.analyzer != "word"
            or words.token_pattern != LATIN_WORD_PATTERN
            or words.tokenizer is not None
            or words.stop_words is not None
        ):
            raise NotCompilable("only Latin-letter word n-grams compile (no segmenter)")
    if type(vectorizer) is not TfidfVectorizer or vectorizer.analyzer != "char":
        raise NotCompilable(f"vectorizer {type(vectorizer).__name__}: only char TF-IDF compiles")
    expected = {
        "lowercase": False,
        "strip_accents": None,
        "preprocessor": None,
        "sublinear_tf": True,
        "use_idf": True,
        "norm": "l2",
        "binary": False,
    }
    for part in (vectorizer, words) if words is not None else (vectorizer,):
        for name, value in expected.items():
            if getattr(part, name) != value:
                raise NotCompilable(f"vectorizer {name}={getattr(part, name)!r}, need {value!r}")
        if part.idf_.dtype != np.float32:
            raise NotCompilable(f"idf dtype {part.idf_.dtype}, need float32")
    compiled = _compiled_linear(model, _compiled_vectorizer(vectorizer, words))
    if getattr(model, "fast", None) is not None:
        # The cascade's first reader shares the vectorizer: one copy of the n-gram arrays.
        compiled.fast = _compiled_linear(model.fast, compiled.vectorizer)
        compiled.fast.handset = dict(model.fast.handset)
        compiled.fast_band = model.fast_band
    compiled.handset = dict(model.handset)
    compiled.scripts = model.scripts
    compiled.neighbours = getattr(model, "neighbours", None)
    compiled.data_files = getattr(model, "data_files", None)
    return compiled


def _compiled_linear(model: TextModel, compiled_vectorizer: Any) -> CompiledModel:
    """The classifier and calibrator of `model` as arrays, over a compiled vectorizer."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    base = model.classifier.base
    calibrator = model.classifier.calibrator
    # Both learners score X @ coef.T + intercept, one column per category (multinomial
    # logistic regression; a one-vs-rest linear SVM); the calibrator maps those to probabilities.
    if not isinstance(base, LogisticRegression | LinearSVC) or len(base.classes_) < 3:
        raise NotCompilable("base must be a LogisticRegression or LinearSVC over 3+ categories")
    if not isinstance(calibrator, LogisticRegression) or len(calibrator.classes_) < 3:
        raise NotCompilable("calibrator must be a multinomial LogisticRegression")
    if list(calibrator.classes_) != list(base.classes_):
        raise NotCompilable("calibrator and base classes differ")
    return CompiledModel(
        compiled_vectorizer,
        model.feature_names,
        [str(c) for c in base.classes_],
        # In the dtype the estimator holds (float32 when fitted on float32 TF-IDF): the product
        # is computed in it, exactly as scikit-learn computes it.
        np.asarray(base.coef_),
        np.asarray(base.intercept_),
        np.asarray(calibrator.coef_, dtype=np.float64),
        np.asarray(calibrator.intercept_, dtype=np.float64),
        float(model.structured_scale),
        float(getattr(model, "embedding_scale", 0.0)),
    )


def _compiled_vectorizer(vectorizer: Any, words: Any) -> Any:
    low, high = vectorizer.ngram_range
    if high > _MAX_CHARS:
        raise NotCompilable(f"n-grams up to {high} characters; keys hold {_MAX_CHARS}")
    items = sorted((ngram_key(term), column) for term, column in vectorizer.vocabulary_.items())
    keys = np.array([key for key, _ in items], dtype=np.uint64)
    columns = np.array([column for _, column in items], dtype=np.int32)
    compiled_vectorizer: Any = CompiledVectorizer(
        keys, columns, np.asarray(vectorizer.idf_), (low, high)
    )
    if words is not None:
        terms = sorted(words.vocabulary_.items())
        compiled_vectorizer = CompiledCharWordVectorizer(
            compiled_vectorizer,
            CompiledWordVectorizer(
                np.array([term for term, _ in terms], dtype=str),
                np.array([column for _, column in terms], dtype=np.int32),
                np.asarray(words.idf_),
                tuple(words.ngram_range),
            ),
        )
    return compiled_vectorizer


# ---------------------------------------------------------------------------------------------
# The artifact: a zip of .npy arrays


def _meta(model: CompiledModel) -> dict[str, Any]:
    scripts = model.scripts.scripts if model.scripts is not None else None
    words = getattr(model.vectorizer, "words", None)
    meta: dict[str, Any] = {} if words is None else {"word_ngram_range": list(words.ngram_range)}
    return meta | {
        "arrays_version": ARRAYS_VERSION if words is None else WORD_ARRAYS_VERSION,
        "categories": list(model.categories),
        "feature_names": list(model.feature_names),
        "structured_scale": model.structured_scale,
        # The sentence embedding (service/engine/sentence.py): its weight and the encoder whose
        # numbers the model was fitted on; 0 and None when the model does not read it.
        "embedding_scale": model.embedding_scale,
        "encoder": encoder_id() if model.embedding_scale else None,
        "ngram_range": list(model.vectorizer.ngram_range),
        "handset": {name: list(value) for name, value in sorted(model.handset.items())},
        "data_files": model.data_files,
        "scripts": None
        if scripts is None
        else [[s.source, s.publisher, s.date, s.fraud_type] for s in scripts],
        # The cascade's first reader (its arrays are fast_*): when its reading stands, and the
        # weight of its structured features; None without a cascade.
        "fast": None
        if model.fast is None or model.fast_band is None
        else {
            "band": list(model.fast_band),
            "structured_scale": model.fast.structured_scale,
            "handset": {name: list(value) for name, value in sorted(model.fast.handset.items())},
        },
        # The real rows' meaning neighbours (their arrays are neighbours_*): how they are read;
        # None without them.
        "neighbours": None
        if model.neighbours is None
        else dataclasses.asdict(model.neighbours.settings),
    }


def write_arrays(model: CompiledModel, path: Path) -> None:
    """Write the compiled model; the same model always gives the same bytes."""
    meta = json.dumps(_meta(model), ensure_ascii=False, sort_keys=True).encode("utf-8")
    chars = getattr(model.vectorizer, "chars", model.vectorizer)
    words = getattr(model.vectorizer, "words", None)
    arrays = {
        "keys": chars.keys,
        "columns": chars.columns,
        "idf": chars.idf,
        "coef": model.coef,
        "intercept": model.intercept,
        "calibration_coef": model.calibration_coef,
        "calibration_intercept": model.calibration_intercept,
        "meta": np.frombuffer(meta, dtype=np.uint8),
    }
    if words is not None:
        arrays.update(word_terms=words.terms, word_columns=words.columns, word_idf=words.idf)
    if model.fast is not None:
        arrays.update(
            fast_coef=model.fast.coef,
            fast_intercept=model.fast.intercept,
            fast_calibration_coef=model.fast.calibration_coef,
            fast_calibration_intercept=model.fast.calibration_intercept,
        )
    if model.scripts is not None:
        arrays.update({f"scripts_{name}": a for name, a in model.scripts.arrays.items()})
    if model.neighbours is not None:
        arrays.update({f"neighbours_{name}": a for name, a in model.neighbours.arrays.items()})
    write_npz(path, arrays, compress=False)


def read_arrays(path: Path) -> CompiledModel:
    """Load a compiled model (no pickle: object arrays are refused by numpy)."""
    with np.load(path, allow_pickle=False) as arrays:
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        if meta.get("arrays_version") not in (ARRAYS_VERSION, WORD_ARRAYS_VERSION):
            raise ValueError(f"arrays version {meta.get('arrays_version')!r}")
        low, high = meta["ngram_range"]
        vectorizer: Any = CompiledVectorizer(
            arrays["keys"], arrays["columns"], arrays["idf"], (low, high)
        )
        if meta["arrays_version"] == WORD_ARRAYS_VERSION:
            word_low, word_high = meta["word_ngram_range"]
            vectorizer = CompiledCharWordVectorizer(
                vectorizer,
                CompiledWordVectorizer(
                    arrays["word_terms"],
                    arrays["word_columns"],
                    arrays["word_idf"],
                    (word_low, word_high),
                ),
            )

        def linear(prefix: str, structured_scale: float, embedding_scale: float) -> CompiledModel:
            """One linear model over the shared vectorizer, from its `prefix`ed arrays."""
            return CompiledModel(
                vectorizer,
                meta["feature_names"],
                meta["categories"],
                arrays[f"{prefix}coef"],
                arrays[f"{prefix}intercept"],
                arrays[f"{prefix}calibration_coef"],
                arrays[f"{prefix}calibration_intercept"],
                structured_scale,
                embedding_scale,
            )

        model = linear("", float(meta["structured_scale"]), float(meta.get("embedding_scale", 0.0)))
        fast = meta.get("fast")
        if fast is not None:
            model.fast = linear("fast_", float(fast["structured_scale"]), 0.0)
            model.fast.handset = {
                name: (str(c), float(w)) for name, (c, w) in fast["handset"].items()
            }
            model.fast_band = (float(fast["band"][0]), float(fast["band"][1]))
        if meta["scripts"] is not None:
            model.scripts = KnownScripts(
                [Script(*row) for row in meta["scripts"]],
                {name: arrays[f"scripts_{name}"] for name in SCRIPT_ARRAYS},
            )
        if meta.get("neighbours") is not None:
            model.neighbours = Neighbours(
                arrays["neighbours_vectors"],
                arrays["neighbours_scam"],
                arrays["neighbours_projection"],
                NeighbourSettings(**meta["neighbours"]),
            )
    model.handset = {name: (str(c), float(w)) for name, (c, w) in meta["handset"].items()}
    model.data_files = meta.get("data_files")
    return model
