"""What the pipeline found in one record before the verdict is drawn.

Its own module because two others read it: the pipeline draws the verdict from it
(service/engine/pipeline.py), and the model builds its input from it (service/engine/model.py,
used by training too), and neither of those imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import re2

from service.engine.normalize import Normalized
from service.engine.numbers.directory import BrandMention, Contact
from service.engine.numbers.parse import NumberInfo
from service.engine.schemas import CallRecord, Signal, SmsRecord

# Words that make a message about borrowing or repaying; without them and without a claimed brand
# or any collection signal, a message is `other` rather than a genuine notice.
FINANCE_WORDS = re2.compile(
    "还款|逾期|借款|贷款|欠款|欠费|催收|账单|信用卡|额度|分期|应还|待还|到期|征信|借呗|花呗|白条|金条|"
    "还呗|微粒贷|备用金|本金|利息|罚息|最低还款|消费金融|网贷|借条|协商还款|减免"
)


@dataclass(frozen=True)
class Analysis:
    """Everything the pipeline found in one record, before the verdict is drawn."""

    record: SmsRecord | CallRecord
    norm: Normalized | None
    sender: NumberInfo | None
    brands: list[BrandMention]
    contacts: list[Contact]
    signals: list[Signal] = field(default_factory=list)

    @property
    def finance_related(self) -> bool:
        # Legit-leaning signals (an unsubscribe footer) appear on ads too, and an unknown caller's
        # number says nothing about a loan: neither alone makes a record about borrowing.
        if self.brands or (self.sender is not None and self.sender.brand):
            return True
        if any(s.source == "rule" and s.category in {"scam", "abusive"} for s in self.signals):
            return True
        return bool(self.norm and FINANCE_WORDS.search(self.norm.text))
