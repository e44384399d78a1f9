"""PII scrubbing: personal data and secrets in a prompt replaced by typed placeholders
(`[EMAIL_1]`, `[PHONE_2]`, ...), and the placeholders in an answer put back.

What is found, and how it is told from look-alikes:

    EMAIL    an address (user@host.tld)
    PHONE    a number `phonenumbers` (Google's libphonenumber) finds valid, in international
             form or in the operator's default region (PII_PHONE_REGION)
    CARD     13 to 19 digits, spaced or dashed, that pass the Luhn check (python-stdnum)
    IBAN     an IBAN whose check digits are right (python-stdnum)
    SSN      a US social security number written 123-45-6789 whose parts may be issued
    IP       an IPv4 or IPv6 address (the standard library parses it)
    API_KEY  a key of a known shape (sk-..., AKIA..., ghp_..., xoxb-..., AIza...) or a token of
             32+ characters whose entropy is past what hex digests and words reach

Where two findings overlap, the kind listed first wins (a card number is not also a phone).
Within one Scrubber (one job) the same value always gets the same placeholder, so the model
can still tell that two mentions are one person's.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn


class PiiKind(enum.StrEnum):
    EMAIL = "EMAIL"
    CARD = "CARD"
    IBAN = "IBAN"
    SSN = "SSN"
    API_KEY = "API_KEY"
    IP = "IP"
    PHONE = "PHONE"


# The order overlaps are settled in: the most specific shapes first.
PRIORITY = (
    PiiKind.EMAIL,
    PiiKind.API_KEY,
    PiiKind.IBAN,
    PiiKind.CARD,
    PiiKind.SSN,
    PiiKind.IP,
    PiiKind.PHONE,
)
PLACEHOLDER = re.compile(r"\[(" + "|".join(k.value for k in PiiKind) + r")_(\d+)\]")

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_PHONE_MAX_TRIES = 2_000
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)")
_IPV6 = re.compile(
    r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)
_KNOWN_KEYS = re.compile(
    r"(?<![\w-])(?:"
    r"sk-[A-Za-z0-9_-]{20,}"  # OpenAI (sk-proj-...) and Anthropic (sk-ant-...)
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|pq_[A-Za-z0-9_-]{40,}"  # promptq's own keys
    r")(?![\w-])"
)
_TOKEN = re.compile(r"(?<![\w-])[A-Za-z0-9_-]{32,}(?![\w-])")
# Bits per character: a hex digest tops out at 4.0 and words far below; a random base64 or
# alphanumeric token of 32+ characters is typically past 4.5.
_TOKEN_MIN_ENTROPY = 4.2


@dataclass(frozen=True)
class Finding:
    kind: PiiKind
    start: int
    end: int
    # The form two mentions of one value share (digits only, E.164, ...).
    canonical: str


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _emails(text: str) -> Iterator[Finding]:
    for m in _EMAIL.finditer(text):
        yield Finding(PiiKind.EMAIL, m.start(), m.end(), m.group().lower())


def _cards(text: str) -> Iterator[Finding]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", m.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            yield Finding(PiiKind.CARD, m.start(), m.end(), digits)


def _ibans(text: str) -> Iterator[Finding]:
    for m in _IBAN.finditer(text):
        # The pattern may run into a following word of capitals: shorten it group by group
        # until the checksum holds.
        candidate = m.group()
        while len(candidate.replace(" ", "")) >= 15:
            compact = candidate.replace(" ", "")
            if iban.is_valid(compact):
                yield Finding(PiiKind.IBAN, m.start(), m.start() + len(candidate), compact)
                break
            candidate = candidate[:-1].rstrip()


def _ssns(text: str) -> Iterator[Finding]:
    for m in _SSN.finditer(text):
        if ssn.is_valid(m.group()):
            yield Finding(PiiKind.SSN, m.start(), m.end(), m.group().replace("-", ""))


def _ips(text: str) -> Iterator[Finding]:
    for pattern in (_IPV6, _IPV4):
        for m in pattern.finditer(text):
            try:
                address = ipaddress.ip_address(m.group())
            except ValueError:
                continue
            # `::` alone (and `::1`-like loopback spellings of nothing) is far likelier code
            # (Haskell's `::`, C++'s scope operator) than an address anybody would mind leaking.
            if address.is_unspecified or address.is_loopback:
                continue
            yield Finding(PiiKind.IP, m.start(), m.end(), address.compressed)


def _api_keys(text: str) -> Iterator[Finding]:
    for m in _KNOWN_KEYS.finditer(text):
        yield Finding(PiiKind.API_KEY, m.start(), m.end(), m.group())
    for m in _TOKEN.finditer(text):
        token = m.group()
        mixed = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
        if mixed and _entropy(token) >= _TOKEN_MIN_ENTROPY:
            yield Finding(PiiKind.API_KEY, m.start(), m.end(), token)


def _phones(text: str, region: str) -> Iterator[Finding]:
    # A bounded number of candidate spans: the matcher's default (65,535 tries) lets a long
    # run of digit groups cost seconds of CPU in the accept path.
    matcher = phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.VALID, max_tries=_PHONE_MAX_TRIES
    )
    for match in matcher:
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        yield Finding(PiiKind.PHONE, match.start, match.end, e164)


def find_pii(text: str, phone_region: str = "US") -> list[Finding]:
    """Every finding in `text`, without overlaps, in the order they appear."""
    found: dict[PiiKind, Iterator[Finding]] = {
        PiiKind.EMAIL: _emails(text),
        PiiKind.API_KEY: _api_keys(text),
        PiiKind.IBAN: _ibans(text),
        PiiKind.CARD: _cards(text),
        PiiKind.SSN: _ssns(text),
        PiiKind.IP: _ips(text),
        PiiKind.PHONE: _phones(text, phone_region),
    }
    kept: list[Finding] = []
    for kind in PRIORITY:
        for finding in found[kind]:
            if all(finding.end <= k.start or finding.start >= k.end for k in kept):
                kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


class Scrubber:
    """Replaces findings by placeholders, numbered per kind, for the texts of one job.

    `known` (placeholder -> original) continues an earlier scrubbing of the same job: its
    placeholders keep their numbers and their values their placeholders."""

    def __init__(self, phone_region: str = "US", known: Mapping[str, str] | None = None) -> None:
        self._region = phone_region
        self._originals: dict[str, str] = {}
        self._by_value: dict[tuple[PiiKind, str], str] = {}
        self._counts: Counter[PiiKind] = Counter()
        for placeholder, original in (known or {}).items():
            m = PLACEHOLDER.fullmatch(placeholder)
            if m is None:
                raise ValueError(f"not a placeholder: {placeholder!r}")
            kind = PiiKind(m.group(1))
            self._counts[kind] = max(self._counts[kind], int(m.group(2)))
            self._originals[placeholder] = original
            for finding in find_pii(original, phone_region):
                self._by_value[(kind, finding.canonical)] = placeholder

    def scrub(self, text: str) -> str:
        """`text` with every finding replaced by its placeholder."""
        pieces: list[str] = []
        at = 0
        for finding in find_pii(text, self._region):
            pieces.append(text[at : finding.start])
            pieces.append(self._placeholder(finding, text[finding.start : finding.end]))
            at = finding.end
        pieces.append(text[at:])
        return "".join(pieces)

    def _placeholder(self, finding: Finding, original: str) -> str:
        key = (finding.kind, finding.canonical)
        placeholder = self._by_value.get(key)
        if placeholder is None:
            self._counts[finding.kind] += 1
            placeholder = f"[{finding.kind.value}_{self._counts[finding.kind]}]"
            self._by_value[key] = placeholder
            self._originals[placeholder] = original
        return placeholder

    @property
    def originals(self) -> dict[str, str]:
        """Placeholder -> the text it replaced (its first spelling, for a value seen twice)."""
        return dict(self._originals)

    def counts(self) -> dict[str, int]:
        """How many distinct values of each kind were replaced."""
        return {kind.value: n for kind, n in self._counts.items() if n}


def restore(text: str, originals: Mapping[str, str]) -> str:
    """`text` with each placeholder of `originals` put back; any other bracketed text stays."""
    return PLACEHOLDER.sub(lambda m: originals.get(m.group(), m.group()), text)
