"""PII scrubbing: each kind found, replaced by its typed placeholder and restored; look-alikes
(a number that fails Luhn, an IBAN with wrong check digits, a hex digest, a time) left alone;
one value one placeholder; and the sealed mapping opens only with its key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from shared.errors import PiiRestoreUnavailableError
from shared.input_safety.pii import PiiKind, Scrubber, find_pii, restore
from shared.input_safety.pii_vault import seal, unseal

# (kind, text around the value, the value): real-format test values (documentation ranges,
# card-network test numbers, the IBAN registry's examples).
CASES = [
    (PiiKind.EMAIL, "Write to {} today.", "jane.doe+work@example.co.uk"),
    (PiiKind.PHONE, "Call me on {} after six.", "+1 (415) 555-2671"),
    (PiiKind.PHONE, "Her number is {}.", "+44 20 7946 0958"),
    (PiiKind.PHONE, "Office: {}", "(650) 253-0000"),
    (PiiKind.CARD, "Card {} expires soon.", "4111 1111 1111 1111"),
    (PiiKind.CARD, "Charge {} please.", "5500-0000-0000-0004"),
    (PiiKind.IBAN, "Pay to {} by Friday.", "DE89 3704 0044 0532 0130 00"),
    (PiiKind.IBAN, "IBAN {}", "GB82WEST12345698765432"),
    (PiiKind.SSN, "SSN {} on file.", "123-45-6789"),
    (PiiKind.IP, "The server at {} is down.", "203.0.113.42"),
    (PiiKind.IP, "Ping {} again.", "2001:db8::8a2e:370:7334"),
    (PiiKind.API_KEY, "Use key {} for it.", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t"),
    (PiiKind.API_KEY, "AWS id {} leaked.", "AKIAIOSFODNN7EXAMPLE"),
    (PiiKind.API_KEY, "token {}", "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"),
    (PiiKind.API_KEY, "secret={} end", "q8Zt3Lw9Xv2Rk7Nm4Pb6Yc1Hs5Jd0Gf8Ta3We"),
]


@pytest.mark.parametrize(("kind", "template", "value"), CASES)
def test_each_kind_is_found_replaced_and_restored(kind: PiiKind, template: str, value: str) -> None:
    """The value is found as its kind, replaced by `[KIND_1]`, and put back by restore()."""
    text = template.format(value)
    scrubber = Scrubber()
    scrubbed = scrubber.scrub(text)
    assert scrubbed == template.format(f"[{kind.value}_1]")
    assert value not in scrubbed
    assert scrubber.originals == {f"[{kind.value}_1]": value}
    answer = f"Noted: [{kind.value}_1]."
    assert restore(answer, scrubber.originals) == f"Noted: {value}."


@pytest.mark.parametrize(
    "text",
    [
        "Order 4111 1111 1111 1112 shipped.",  # 16 digits that fail the Luhn check
        "IBAN DE89 3704 0044 0532 0130 01 is wrong.",  # wrong check digits
        "SSN 000-12-3456 was never issued.",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixed it",  # a hex digest
        "request id 550e8400-e29b-41d4-a716-446655440000",  # a UUID
        "Python 3.11.7 at 12:30:45 on 2026-12-04, build 20261204",
        "Call the function get_user_profile_settings_for_account_v2 now",
        "Quantity 1234567 of item 42",
        "length :: [a] -> Int",  # Haskell's `::` is the unspecified IPv6 address, not PII
        "std :: vector and the loopback ::1",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    """Numbers, digests and identifiers that only look like PII are not replaced."""
    assert find_pii(text) == []
    assert Scrubber().scrub(text) == text


def test_one_value_one_placeholder_across_messages() -> None:
    """Within one job the same value gets the same placeholder, whatever its spelling, and
    distinct values of a kind are numbered in order."""
    scrubber = Scrubber()
    first = scrubber.scrub("Mail a@example.com or b@example.com; call +1 415-555-2671.")
    second = scrubber.scrub("Again: A@Example.com, and (415) 555-2671.")
    assert first == "Mail [EMAIL_1] or [EMAIL_2]; call [PHONE_1]."
    assert second == "Again: [EMAIL_1], and [PHONE_1]."
    assert scrubber.counts() == {"EMAIL": 2, "PHONE": 1}


def test_overlaps_go_to_the_more_specific_kind() -> None:
    """An email's digits are not a phone; a card number is not also a phone number."""
    scrubbed = Scrubber().scrub("4155552671@example.com paid with 4111111111111111")
    assert scrubbed == "[EMAIL_1] paid with [CARD_1]"


def test_a_known_mapping_continues_the_numbering() -> None:
    """Scrubbing text again with the mapping of an earlier pass (the API's, unsealed by the
    worker) changes nothing already scrubbed and numbers new values after the known ones."""
    first = Scrubber()
    stored = first.scrub("Mail a@example.com")
    again = Scrubber(known=first.originals)
    assert again.scrub(stored) == stored
    assert again.scrub("and b@example.com or a@example.com") == "and [EMAIL_2] or [EMAIL_1]"
    assert again.originals == {"[EMAIL_1]": "a@example.com", "[EMAIL_2]": "b@example.com"}


def test_restore_leaves_unknown_placeholders() -> None:
    """Only placeholders of the mapping are replaced; a model's invented one stays as it is."""
    assert restore("[EMAIL_1] and [EMAIL_9] [x]", {"[EMAIL_1]": "a@b.io"}) == (
        "a@b.io and [EMAIL_9] [x]"
    )


def test_the_vault_opens_only_with_its_key() -> None:
    """A sealed mapping holds no original in clear, opens with its key, not with another."""
    key = Fernet.generate_key().decode()
    token = seal({"[EMAIL_1]": "jane@example.com"}, key)
    assert "jane" not in token
    assert unseal(token, key) == {"[EMAIL_1]": "jane@example.com"}
    with pytest.raises(ValueError, match="does not open"):
        unseal(token, Fernet.generate_key().decode())
    with pytest.raises(PiiRestoreUnavailableError):
        seal({}, "")
