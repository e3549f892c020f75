"""Secrets at rest and token digests.

Tokens we hand out (session cookies, API tokens, email links) are 256-bit random values; only their
SHA-256 is stored, so a database leak does not let anyone sign in. Short codes (6 digits, recovery
codes) are hashed with an HMAC keyed by SECRET_KEY, so a leak alone cannot brute-force them offline.
Secrets we must read back (TOTP seeds, signing keys) are sealed with AES-256-GCM under a key derived
from SECRET_KEY for that purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from paytime_app.settings import get_settings


def new_token() -> str:
    """A 256-bit URL-safe random token."""
    return secrets.token_urlsafe(32)


def digest_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def digest_code(code: str, *, purpose: str) -> str:
    key = _derive_key(f"code:{purpose}")
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def new_numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def _derive_key(purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"paytime", info=purpose.encode()).derive(
        get_settings().secret_key.encode()
    )


def seal_secret(plaintext: bytes, *, purpose: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_derive_key(f"seal:{purpose}")).encrypt(nonce, plaintext, purpose.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def open_secret(sealed: str, *, purpose: str) -> bytes:
    raw = base64.urlsafe_b64decode(sealed.encode())
    return AESGCM(_derive_key(f"seal:{purpose}")).decrypt(raw[:12], raw[12:], purpose.encode())
