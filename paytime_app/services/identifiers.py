"""Human-readable references for support (PAY-…, TX-…) and fingerprints of idempotent requests."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

# Crockford base32: no I, L, O, U, so a reference read over the phone cannot be misheard.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def human_reference(prefix: str, length: int) -> str:
    """`PREFIX-` and `length` random characters (5 bits each); callers store it unique, so a
    collision surfaces as an IntegrityError, never as a silent merge."""
    bits = secrets.randbits(5 * length)
    return f"{prefix}-" + "".join(REFERENCE_ALPHABET[(bits >> (5 * index)) & 31] for index in range(length))


def request_hash(request: dict[str, Any]) -> str:
    """SHA-256 of the request's canonical JSON: same key + same hash is a retry, another hash a misuse."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
