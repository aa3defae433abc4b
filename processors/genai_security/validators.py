"""Checks that turn a pattern match into a finding: checksums, decodable structure, randomness.

A pattern alone cannot tell a card number from an order number or a key from
a UUID; these checks keep the near misses out.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
from collections import Counter

_NOT_DIGITS = {ord(c): None for c in " -"}
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # each digit doubled, the digits of the result summed


def luhn(text: str) -> bool:
    """Payment card numbers carry a Luhn check digit (spaces and dashes ignored)."""
    digits = text.translate(_NOT_DIGITS)
    if not (13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        return False
    if digits.count(digits[0]) == len(digits):  # 0000 0000 0000 0000 passes Luhn and is no card
        return False
    total = sum(map(int, digits[-1::-2])) + sum(_LUHN_DOUBLED[int(c)] for c in digits[-2::-2])
    return total % 10 == 0


def payment_card(text: str) -> bool:
    """A Luhn-valid number that is not the account part of an IBAN (the match may carry an IBAN prefix)."""
    return not text[:2].isalpha() and luhn(text)


def iban(text: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, the result mod 97 is 1."""
    compact = "".join(text.split()).upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = "".join(str(int(c, 36)) for c in rearranged)
    except ValueError:
        return False
    return int(number) % 97 == 1


def us_ssn(text: str) -> bool:
    """Area 001–899 except 666, group 01–99, serial 0001–9999."""
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) != 9:
        return False
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    return 0 < area < 900 and area != 666 and group != 0 and serial != 0


def ip_address(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    # Version strings like 1.0.0.0 are addresses too; the unspecified address says nothing about anyone.
    return not address.is_unspecified


def jwt(text: str) -> bool:
    """Three base64url segments whose first decodes to a JSON header naming an algorithm."""
    header = text.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        document = json.loads(decoded)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and "alg" in document


def shannon_entropy(text: str) -> float:
    """Bits per character."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
HIGH_ENTROPY_BITS = 3.5
HIGH_ENTROPY_MIN_LENGTH = 16


def high_entropy(text: str) -> bool:
    """Random enough to be a generated secret, not a word or a placeholder."""
    value = text.strip("'\"")
    return len(value) >= HIGH_ENTROPY_MIN_LENGTH and shannon_entropy(value) >= HIGH_ENTROPY_BITS


def decodes_to_instruction(text: str) -> bool:
    """Base64 or hex that decodes to text telling the model to override its instructions."""
    from processors.genai_security.rules import instruction_override_in

    candidates: list[bytes] = []
    # Zero-width characters between letters: read the letters.
    visible = "".join(c for c in text if c not in ZERO_WIDTH)
    if visible != text:
        return instruction_override_in(visible)
    compact = text.strip().replace("\\x", "").replace(" ", "")
    try:
        candidates.append(base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True))
    except (binascii.Error, ValueError):
        pass
    if len(compact) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in compact):
        candidates.append(bytes.fromhex(compact))
    for raw in candidates:
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if instruction_override_in(decoded):
            return True
    return False
