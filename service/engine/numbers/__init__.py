"""Numbers in a record, one job per module:

* `parse`: any way a phone shows a number → a structural `NumberInfo` (no lists involved);
* `directory`: the official lists of rules/numbers/*.yaml, validated into frozen objects, and
  what they say about a number, a domain or the brands and contacts a message names;
* `links`: where the links, domains and signatures of a message are (patterns only, no lists);
* `signals`: brand/number agreement turned into `Signal`s with original spans;
* `phone_facts`: 归属地 and carrier from phonenumbers' prefix data.
"""
