"""Prompt-injection screening: weighted patterns over the user's messages, and a score in [0, 1].

Each rule is a regular expression with a weight, the chance on its own that a prompt it matches
is an injection. The score combines the rules that matched as independent evidence (a noisy OR:
1 - the product of 1 - weight), so one strong rule or a few weak ones reach the threshold, and
a rule matching twice counts once. System messages are not screened: they are the caller's own
instructions, and a guard prompt ("never reveal your system prompt") reads like an attack.

A pattern list is a heuristic, not a guarantee: tests/shared/test_injection_screening.py
measures it on a labelled set and prints its precision, recall and false-positive rate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Words that an instruction-override names as its target.
_TARGETS = (
    r"(?:instructions?|prompts?|rules|directions|directives|guidelines|guardrails|context|"
    r"system (?:message|prompt)|programming|policy|policies|constraints|orders)"
)
# Not a bare "the": "ignore the rules of chess" is a story, "ignore your rules" is not.
_PRIOR = r"(?:previous|prior|above|earlier|preceding|original|initial|all|any|your)"


@dataclass(frozen=True)
class Rule:
    name: str
    weight: float
    pattern: re.Pattern[str]


def _rule(name: str, weight: float, pattern: str) -> Rule:
    return Rule(name, weight, re.compile(pattern, re.IGNORECASE | re.DOTALL))


RULES: tuple[Rule, ...] = (
    # "Ignore all previous instructions", "disregard the above directions", "override your rules"
    _rule(
        "ignore_instructions",
        0.75,
        rf"\b(?:ignore|disregard|forget|override|overrule|bypass|skip|abandon|drop)\b"
        rf"[^.!?\n]{{0,30}}?\b{_PRIOR}\b[^.!?\n]{{0,30}}?\b{_TARGETS}\b",
    ),
    _rule(
        "forget_everything",
        0.6,
        r"\b(?:forget|disregard|ignore)\s+(?:everything|all(?: of)? (?:that|this|it))\b"
        r"[^.!?\n]{0,40}\b(?:told|said|given|above|before|instructed)\b",
    ),
    _rule(
        "instructions_void",
        0.6,
        rf"\b{_TARGETS}\b[^.!?\n]{{0,30}}\b(?:are|is)\s+(?:now\s+)?(?:void|cancell?ed|revoked|"
        r"obsolete|no longer (?:valid|apply|in effect))\b",
    ),
    _rule(
        "new_instructions",
        0.35,
        r"\b(?:new|updated|real|actual|true)\s+(?:instructions?|rules?|task|directive)s?\s*:",
    ),
    # Asking for the hidden prompt: "print your system prompt", "repeat the text above"
    _rule(
        "system_prompt_exfiltration",
        0.75,
        r"\b(?:reveal|show|print|repeat|output|display|leak|dump|recite|tell me|give me|"
        r"what (?:is|are|was|were))\b[^.!?\n]{0,40}\b(?:(?:your|the|this) system "
        r"(?:prompt|message)|(?:initial|original|hidden|secret|first) (?:prompt|instructions?|"
        r"message|text)|your (?:instructions|directives|configuration)|context window)\b",
    ),
    # Asking what it was told: "the instructions you were given", "what were you told"
    _rule(
        "instructions_given",
        0.6,
        r"\b(?:instructions|rules|prompt|guidelines)\s+(?:that\s+)?you\s+(?:were|have been|"
        r"'ve been)\s+(?:given|told|provided)\b|"
        r"\bwhat (?:were|have) you been (?:told|instructed)\b",
    ),
    _rule(
        "text_above_exfiltration",
        0.5,
        r"\b(?:repeat|print|output|reveal|show|leak)\b[^.!?\n]{0,30}\b(?:text|everything|words|"
        r"content|contents)\b[^.!?\n]{0,30}\b(?:above|before (?:this|my)|placed before|"
        r"starting with)\b",
    ),
    _rule(
        "verbatim_instructions",
        0.55,
        r"\binstructions\b[^.!?\n]{0,60}\b(?:verbatim|word for word|exactly as)\b",
    ),
    # Role-play jailbreaks: DAN, developer mode, "no restrictions", evil or unfiltered personas
    _rule(
        "jailbreak_persona",
        0.7,
        r"\b(?:DAN|do anything now|jailbroken|"
        r"(?:enable|enter|activate|switch to|you are in)\s+(?:developer|god|debug) mode|"
        r"unfiltered (?:one|ai|assistant|mode|persona)|evil (?:ai|assistant|bot)|"
        r"unrestricted (?:ai|assistant|mode))\b",
    ),
    # The words alone are a topic as often as an attack ("common jailbreak techniques").
    _rule("jailbreak_words", 0.3, r"\b(?:jailbreak\w*|developer mode|god mode)\b"),
    _rule(
        "no_restrictions",
        0.45,
        r"\b(?:no|without|free(?:d)? from(?: all)?|not bound by(?: any)?|ignores?(?: all)?)\s+"
        r"(?:any\s+)?(?:restrictions|limits|limitations|filters|rules|guidelines|"
        r"safety (?:rules|guidelines)|censorship|content polic(?:y|ies))\b",
    ),
    _rule(
        "no_longer_assistant",
        0.55,
        r"\byou are no longer\b|\byou(?:'re| are) now (?:free|unrestricted|DAN|an? \w+ without)\b",
    ),
    _rule(
        "never_refuse",
        0.45,
        r"\b(?:never|don't|do not|must not)\s+refuse\b|\bstay in character\b",
    ),
    _rule(
        "bypass_safety",
        0.6,
        r"\b(?:bypass|disable|turn off|circumvent|get around|ignore)\b[^.!?\n]{0,25}\b(?:safety|"
        r"content|moderation|ethical)\s*(?:guidelines|filters?|policy|policies|rules|"
        r"restrictions|guardrails|settings)\b",
    ),
    _rule(
        "authority_claim",
        0.35,
        r"\bI am (?:your|the|an?) (?:developer|creator|administrator|admin|owner|operator)\b|"
        r"\b(?:system|admin|developer)\s+override\b",
    ),
    # Chat-template delimiters and fake system turns smuggled into user text
    _rule(
        "delimiter_injection",
        0.6,
        r"<\|(?:im_start|im_end|system|endoftext)\|>|\[/?INST\]|</?(?:system|user|assistant)>|"
        r"^\s*#{2,}\s*(?:system|instruction)",
    ),
    # Payloads hidden from a reader: decode-and-obey, long base64 blobs, invisible characters
    _rule(
        "decode_and_follow",
        0.55,
        r"\bdecode\b[^.!?\n]{0,60}\b(?:follow|obey|execute|run|do what|carry out)\b",
    ),
    _rule("base64_blob", 0.3, r"[A-Za-z0-9+/]{40,}={0,2}"),
    _rule("invisible_characters", 0.4, "[\u200b-\u200f\u2060-\u2064\ufeff\U000e0000-\U000e007f]"),
    _rule(
        "override_task",
        0.4,
        r"\b(?:instead|rather)\b[^.!?\n]{0,20}\b(?:output|write|reply|respond|say|print)\b"
        r"[^.!?\n]{0,40}\b(?:only|insult|PWNED|system|password|secret)\b",
    ),
)


@dataclass(frozen=True)
class Verdict:
    score: float
    rules: tuple[str, ...]

    def flagged(self, threshold: float) -> bool:
        return self.score >= threshold


def screen_texts(texts: Iterable[str]) -> Verdict:
    """The score of `texts` taken together, and the names of the rules that matched."""
    texts = list(texts)
    matched = [rule for rule in RULES if any(rule.pattern.search(text) for text in texts)]
    clean = 1.0
    for rule in matched:
        clean *= 1 - rule.weight
    return Verdict(round(1 - clean, 4), tuple(rule.name for rule in matched))
