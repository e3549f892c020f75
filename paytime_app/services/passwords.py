"""Password hashing with argon2id (RFC 9106 second recommended profile: 64 MiB, t=3, p=2) and the
password policy: at least 10 characters, not a well-known password, not mostly one character."""

from __future__ import annotations

import functools
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from paytime_app.errors import ValidationFailed

HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=2, hash_len=32, salt_len=16)
MIN_LENGTH = 10
MAX_LENGTH = 256


class WeakPassword(ValidationFailed):
    code = "weak_password"
    default_message = f"Use at least {MIN_LENGTH} characters."


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password-used-for-timing")


def spend_verification_time(password: str) -> None:
    """Do the work of a verification when there is no account, so timing does not reveal it."""
    verify_password(_dummy_hash(), password)


@functools.cache
def _common_passwords() -> frozenset[str]:
    lines = (Path(__file__).parent / "common_passwords.txt").read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def check_password_strength(password: str, *, email: str = "") -> None:
    """Raises WeakPassword with a message saying what to change."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword()
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) <= 2:
        raise WeakPassword("That password is too common. Choose something harder to guess.")
    local_part = email.partition("@")[0].lower()
    if len(local_part) >= 4 and lowered.startswith(local_part) and len(lowered) - len(local_part) < 4:
        raise WeakPassword("Don't base your password on your email address.")
