"""What a production secret must look like: not a placeholder copied from an example, and, for
the secrets we issue ourselves, random enough once the patterns people reach for are discounted.
Kept apart from the configuration keys because it is a policy, not a key."""

from __future__ import annotations

import math
import re

# Values that show a secret was copied from an example and never set for real.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "password", "example", "dev-staff-key", "dev-admin-token"}
)
# The secrets we issue ourselves (a provider's key or a URL's password is not ours to judge):
# in production each must look random (`secret_strength_bits`).
ISSUED_SECRETS = ("staff_api_keys", "admin_token", "metrics_token")
MIN_SECRET_BITS = 64
# Words people reach for when asked for a secret; matched after undoing common digit/symbol
# substitutions, so `p@ssw0rd` counts as `password`.
WEAK_WORDS = (
    "password",
    "passwd",
    "changeme",
    "change",
    "secret",
    "admin",
    "letmein",
    "welcome",
    "qwerty",
    "example",
    "default",
    "master",
    "login",
    "token",
    "staff",
    "pickup",
    "replace",
    "test",
    "demo",
    "dragon",
    "monkey",
    "iloveyou",
    "sunshine",
    "trustno",
    "key",
)
KEYBOARD_ROWS = (
    "1234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "!@#$%^&*()",
    # columns and zig-zags people type as "random": 1qaz2wsx, zaq12wsx, 1q2w3e4r
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "zaq1xsw2cde3vfr4bgt5nhy6mju7",
    "1q2w3e4r5t6y7u8i9o0p",
    "q1w2e3r4t5y6u7i8o9p0",
)
_LEET = str.maketrans("0134579@$!|+", "oleastgaslit")


def secret_strength_bits(value: str) -> float:
    """A conservative guess at a secret's entropy, in bits, without a dependency: what is left
    after removing the guessable parts (weak words, repeats, runs such as `abcd` or `4321`,
    keyboard rows), at log2 of the character classes left per character."""
    lowered = value.lower()
    keep = [True] * len(value)
    plain = lowered.translate(_LEET)
    for word in WEAK_WORDS:
        for found in re.finditer(re.escape(word), plain):
            keep[found.start() : found.end()] = [False] * len(word)
    lines = [line for row in KEYBOARD_ROWS for line in (row, row[::-1])]
    for start in range(len(lowered)):
        # The longest stretch from here that some keyboard line contains.
        end = start
        while end < len(lowered) and any(lowered[start : end + 1] in line for line in lines):
            end += 1
        if end - start >= 3:
            keep[start:end] = [False] * (end - start)
    for i in range(2, len(value)):
        # Alphabetic or numeric runs: each step the same +1 or -1 (abc, 987, aaa).
        a, b, c = (ord(ch) for ch in lowered[i - 2 : i + 1])
        if b - a == c - b and abs(b - a) <= 1:
            keep[i - 2 : i + 1] = [False] * 3
    rest = "".join(ch for ch, kept in zip(value, keep, strict=True) if kept)
    # A chunk repeated right after itself adds nothing (abcxabcx, 0101...).
    for size in range(len(rest) // 2, 0, -1):
        rest = re.sub(rf"(.{{{size}}})\1+", r"\1", rest, flags=re.S)
    pool = (
        26 * any(ch.islower() for ch in rest)
        + 26 * any(ch.isupper() for ch in rest)
        + 10 * any(ch.isdigit() for ch in rest)
        + 33 * any(not ch.isalnum() for ch in rest)
    )
    return len(rest) * math.log2(pool) if pool else 0.0
