"""How much the sender alone moves the verdict on real genuine finance notices.

    python -m model.sender_probe [--rows 300]

Takes genuine mudou SMS about bills and repayments (finance words; these have no sender in the
data) and scores each one as if it came from no sender, from unlisted 106 ports, from the bank's
hotline and from a personal mobile. A genuine notice should not become risky because its port is
not on our lists; a bank notice from a personal mobile is suspicious by design. These texts are
in the training data: the probe measures the sender's effect, not accuracy.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence

from model import data
from service.engine.analysis import FINANCE_WORDS
from service.engine.pipeline import HIGH_RISK, MEDIUM_RISK, Analyzer
from service.engine.schemas import parse_record

SENDERS = (None, "1069012345678", "10655012345", "95533", "13812345678")


def finance_notices(rows: int) -> list[str]:
    """`rows` genuine mudou SMS about bills and repayments, in a fixed shuffled order."""
    texts = [
        example.record.text or ""
        for example in data.load_mudou(data.DATA_DIR)
        if example.label == data.GENUINE and FINANCE_WORDS.search(example.record.text or "")
    ]
    random.Random(1).shuffle(texts)
    return texts[:rows]


def flagged_shares(
    analyzer: Analyzer, texts: Sequence[str], sender: str | None
) -> tuple[float, float]:
    """Share of `texts` reaching medium and high risk when sent by `sender`."""
    risks = []
    for text in texts:
        record = {"text": text} if sender is None else {"text": text, "sender": sender}
        risks.append(analyzer.check(parse_record(record)).risk)
    medium = sum(r >= MEDIUM_RISK for r in risks) / len(risks)
    high = sum(r >= HIGH_RISK for r in risks) / len(risks)
    return medium, high


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.sender_probe", description=__doc__)
    parser.add_argument("--rows", type=int, default=300)
    args = parser.parse_args(argv)
    texts = finance_notices(args.rows)
    analyzer = Analyzer.load()
    print(f"| sender | rows | flagged at risk >= {MEDIUM_RISK} | flagged at risk >= {HIGH_RISK} |")
    print("|---|---|---|---|")
    for sender in SENDERS:
        medium, high = flagged_shares(analyzer, texts, sender)
        print(f"| {sender or '(none)'} | {len(texts)} | {medium:.3f} | {high:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
