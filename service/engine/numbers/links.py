"""Where the links, bare domains and signatures of a message stand (patterns only, no lists).

Links are found on normalised text, de-obfuscated (hxxp, [.], (dot)) and trimmed of the Chinese
text that follows them; whose a domain is, is the directory's question
(service/engine/numbers/directory.py).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

import re2

_DOT = r"(?:\.|\[\.\]|\(\.\)|\[dot\]|\(dot\))"
# A bare word.word (no scheme, no www) counts as a link only when it ends in one of these: the
# TLDs scam SMS use, kept by hand on purpose. The Public Suffix List (tldextract's bundled
# snapshot) knows every TLD, and that is the problem here: readme.md, setup.py, photo.zip,
# clip.mov and run.sh all end in real TLDs, so taking the full list would mark file names and
# code in a pasted message as links. Links with a scheme or www. are found whatever their TLD,
# and brand domains are matched label by label against the official lists (domain_owner), so
# no registrable-domain split is needed either.
_TLDS = (
    "com|cn|net|org|cc|top|xyz|vip|info|shop|club|site|online|me|io|co|tk|ml|ga|cf|gq|link|ltd|"
    "wang|ren|work|live|app|pro|fun|icu|asia|hk|tw|mo|biz|cloud|store|tech|bid|win|loan|ink|kim|"
    "red|mobi|name|gov|edu|xin|vip|run|ly|im|gg|so|to|la|ws|us|uk|jp|kr|sg|in|ru|de|fr|one|life|"
    "world|today|space|website|fit|press|host|cyou|buzz|rest|bar|monster|sbs|lol|cfd|"
    # Cheap TLDs of phishing SMS quoted in police warnings (10860.pt5jf.pw, www.****.fyi,
    # dwz.cz) and on abuse lists; none is a file extension.
    "pw|fyi|cz|bond|click|help|support|lat|quest|cam|vn|men|date|party|review"
)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PATH = r"[a-z0-9\-._~:/?#@!$&'*+,;=%\[\]]"
_URL_WITH_SCHEME = re2.compile(rf"(?:https?|hxxps?)(?::|\[:\])//{_PATH}+")
_URL_WWW = re2.compile(rf"www{_DOT}{_PATH}+")
_BARE_IP = re2.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?:/" + _PATH + "*)?")
_BARE_DOMAIN = re2.compile(
    rf"{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}(?:{_TLDS})(?::\d{{1,5}})?(?:/{_PATH}*)?"
)
_DOT_FOLD = re.compile(r"\[\.\]|\(\.\)|\[dot\]|\(dot\)")
_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")

# Third-party link shorteners: they hide where a link goes (a brand's own short domain, such as
# u.jd.com, is on the brand's list instead).
SHORT_LINK_HOSTS = frozenset(
    {
        "t.cn",
        "dwz.cn",
        "url.cn",
        "w.url.cn",
        "suo.im",
        "suo.nz",
        "sohu.gg",
        "mrw.so",
        "bit.ly",
        "tinyurl.com",
        "is.gd",
        "goo.gl",
        "ow.ly",
        "t.co",
        "rebrand.ly",
        "cutt.ly",
        "reurl.cc",
        "s.id",
        "v.gd",
        "dwz.mk",
        "0x3.me",
        "6du.in",
        "rrd.me",
        "tb.cn",
        "c.tb.cn",
        "m.tb.cn",
        "kurl.cn",
        "ft12.com",
        "985.so",
        "u.nu",
        "lnkd.in",
        "shorturl.at",
        "tiny.cc",
        "dlj.bz",
    }
)


def valid_ipv4(host: str) -> bool:
    match = _IPV4.fullmatch(host)
    return bool(match) and all(int(part) <= 255 for part in match.groups())


def host_of(text: str) -> str:
    host = _DOT_FOLD.sub(".", text)
    host = re.sub(r"^(?:https?|hxxps?)(?::|\[:\])//", "", host)
    host = re.split(r"[/:?#@]", host, maxsplit=1)[0]
    return host.strip(".")


def _trim_url(text: str, start: int, end: int) -> int:
    """Trailing punctuation belongs to the sentence, not the link."""
    while end > start and text[end - 1] in ".,;:!?)'\"]":
        if text[end - 1] == "]" and text[start:end].endswith("[.]"):
            break
        end -= 1
    return end


def find_signatures(text: str) -> list[tuple[int, int]]:
    """【...】 / [...] groups at the very start or end of the message (the SMS signature)."""
    spans = []
    head = re.match(r"\s*(?:【[^【】]{1,30}】|\[[^\[\]]{1,30}\])", text)
    if head:
        spans.append(head.span())
    else:
        # normalize() drops an ASCII "]" between Chinese characters ("[招商银行]您..." becomes
        # "[招商银行您..."): a name starting right after a leading "[" still signs the message.
        opened = re.match(r"\s*\[", text)
        if opened:
            spans.append((opened.end(), opened.end()))
    tail = re.search(r"(?:【[^【】]{1,30}】|\[[^\[\]]{1,30}\])\s*$", text)
    if tail:
        spans.append(tail.span())
    return spans


@lru_cache(maxsize=64)  # find_brands and find_contacts both ask, one after the other
def find_links(text: str) -> tuple[tuple[int, int, Literal["url", "domain"]], ...]:
    if "." not in text and "//" not in text and "dot" not in text:
        # Every link pattern needs one of these (a scheme's "//", a dot between labels or
        # octets, written "." or "[dot]"): most messages have none, and four scans are saved.
        return ()
    found: list[tuple[int, int, Literal["url", "domain"]]] = []

    def free(start: int, end: int) -> bool:
        return not any(s < end and start < e for s, e, _ in found)

    for pattern in (_URL_WITH_SCHEME, _URL_WWW):
        for match in pattern.finditer(text):
            end = _trim_url(text, match.start(), match.end())
            if end > match.start() and free(match.start(), end):
                found.append((match.start(), end, "url"))
    for match in _BARE_IP.finditer(text):
        start, end = match.start(), _trim_url(text, match.start(), match.end())
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if (before.isalnum() and before.isascii()) or before == "." or after.isdigit():
            continue
        if valid_ipv4(host_of(text[start:end])) and free(start, end):
            found.append((start, end, "url"))
    for match in _BARE_DOMAIN.finditer(text):
        start, end = match.start(), _trim_url(text, match.start(), match.end())
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if (before and before.isascii() and (before.isalnum() or before in "-_")) or (
            after.isascii() and after.isalnum()
        ):
            continue
        if host_of(text[start:end]).replace(".", "").isdigit():
            continue  # 1.2.3 version numbers and amounts
        if free(start, end):
            kind: Literal["url", "domain"] = "url" if "/" in text[start:end] else "domain"
            found.append((start, end, kind))
    return tuple(sorted(found))
