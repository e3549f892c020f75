"""Ed25519 signing keys for tokens and QR tickets, rotated by key id.

Design overview: exactly one key is `active` and signs; `rotate_signing_key` creates a new active
key and demotes the previous one to `verify_only`, so everything it signed (tickets already in
people's pockets) keeps verifying. An operator ends that with `retire_signing_key`; tokens under a
retired key are refused with `key_retired`. The active key is never retired directly: rotate first.

Tokens are compact and JWS-like: `b64url(header).b64url(payload).b64url(signature)`, unpadded
base64url, header `{"alg": "EdDSA", "kid": ..., "typ": "PT"}`, JSON with sorted keys and compact
separators, the signature over the ASCII bytes of `header.payload`. Offline scanners fetch
`list_public_keys` and call `verify_with_public_key`; `verify_payload` is the same check with the
keys read from the database. Both go through `_parse_token` and `_verify_parsed`, and every bad
input (wrong segment count, non-canonical base64, bad JSON, foreign algorithm, bad signature) ends
in an `InvalidSignature`, never in another exception type, so a scanner can show "invalid" for
anything a camera reads.

Private keys are sealed at rest with `seal_secret(purpose="signing_key")`; a database dump alone
cannot forge tickets. Key changes take one advisory lock on PostgreSQL (SQLite serialises writers
with BEGIN IMMEDIATE), and the partial unique index `uq_signing_key_one_active` backs it up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, func, select

from paytime_app.db import for_update, is_postgresql
from paytime_app.errors import Conflict, DomainError, NotFound, ServiceUnavailable
from paytime_app.models.base import utcnow
from paytime_app.models.signing_keys import SigningKey, SigningKeyStatus
from paytime_app.models.users import User
from paytime_app.services.audit import record_audit
from paytime_app.services.crypto import open_secret, seal_secret

SEAL_PURPOSE = "signing_key"
ALGORITHM = "EdDSA"
HEADER_TYPE = "PT"
# A QR code holds under 3 KB; refusing longer input early bounds the work a hostile token can cause.
MAX_TOKEN_LENGTH = 4096
SIGNATURE_LENGTH = 64
PUBLIC_KEY_LENGTH = 32
KID_MAX_LENGTH = 32
LOCK_TIMEOUT = "5s"
# One application-wide advisory lock id for key changes (first 8 bytes of a fixed digest).
_LOCK_ID = int.from_bytes(hashlib.sha256(b"paytime.signing_key").digest()[:8], "big", signed=True)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidSignature(DomainError):
    """A token that is not one we signed; `details["reason"]` says why for logs and scanners."""

    code = "invalid_signature"
    status_code = 400
    default_message = "This code is not valid."


class KeyRetired(InvalidSignature):
    code = "key_retired"
    default_message = "This code was signed with a key that is no longer accepted."


class ActiveKeyError(Conflict):
    code = "active_key"
    default_message = "The active signing key cannot be retired; rotate to a new key first."


# --- key management -------------------------------------------------------------------------------


def rotate_signing_key(*, session: Session, actor: User | None = None) -> SigningKey:
    """Create a new active key; the previous active key becomes verify-only.

    Raises ServiceUnavailable if another key change holds the lock too long, Conflict if the
    one-active-key index still refuses the new key.
    """
    _lock_key_changes(session)
    return _create_active_key(session=session, actor=actor)


def retire_signing_key(*, session: Session, kid: str, actor: User | None = None) -> SigningKey:
    """Stop accepting tokens signed by `kid`; retiring a retired key is a no-op.

    Raises NotFound for an unknown kid, ActiveKeyError (`active_key`) for the key that signs now.
    """
    # The same lock as rotation: otherwise a rotation could promote/demote while we re-check status.
    _lock_key_changes(session)
    key = session.exec(
        for_update(select(SigningKey).where(SigningKey.kid == kid)).execution_options(populate_existing=True)
    ).first()
    if key is None:
        raise NotFound("No signing key with that id.", kid=kid)
    if key.status == SigningKeyStatus.RETIRED:
        return key
    if key.status == SigningKeyStatus.ACTIVE:
        raise ActiveKeyError(kid=kid)
    key.status = SigningKeyStatus.RETIRED
    key.retired_at = utcnow()
    session.add(key)
    record_audit(
        session=session,
        action="signing_key.retired",
        actor=actor,
        target_type="signing_key",
        target_id=key.id,
        data={"kid": key.kid},
    )
    session.flush()
    return key


def get_active_signing_key(*, session: Session) -> SigningKey:
    """The key that signs now; the first call on a fresh database creates it."""
    key = _find_active(session)
    if key is not None:
        return key
    # First use: two requests may both find no key; the lock and re-check make only one create it.
    _lock_key_changes(session)
    key = _find_active(session)
    if key is not None:
        return key
    return _create_active_key(session=session, actor=None)


def list_public_keys(*, session: Session) -> list[dict[str, str]]:
    """Public keys that still verify (active and verify-only), for offline scanners; active first."""
    keys = session.exec(
        select(SigningKey)
        .where(col(SigningKey.status).in_([SigningKeyStatus.ACTIVE, SigningKeyStatus.VERIFY_ONLY]))
        .order_by(col(SigningKey.created_at).desc())
    ).all()
    rows = [{"kid": key.kid, "public_key": key.public_key, "status": str(key.status)} for key in keys]
    return sorted(rows, key=lambda row: row["status"] != SigningKeyStatus.ACTIVE)


def _find_active(session: Session) -> SigningKey | None:
    statement = select(SigningKey).where(SigningKey.status == SigningKeyStatus.ACTIVE)
    return session.exec(statement.execution_options(populate_existing=True)).first()


def _create_active_key(*, session: Session, actor: User | None) -> SigningKey:
    """Demote the active key and insert a new one; the caller holds the key-change lock."""
    previous = _find_active(session)
    if previous is not None:
        previous.status = SigningKeyStatus.VERIFY_ONLY
        session.add(previous)
        # Flush the demotion before the insert: the one-active index is checked row by row.
        session.flush()
    private_key = Ed25519PrivateKey.generate()
    raw_private = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    raw_public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = SigningKey(
        kid=_new_kid(),
        public_key=_b64encode(raw_public),
        private_key_encrypted=seal_secret(raw_private, purpose=SEAL_PURPOSE),
        status=SigningKeyStatus.ACTIVE,
    )
    try:
        with session.begin_nested():
            session.add(key)
    except IntegrityError:
        # Only reachable if a writer skipped the lock (or a kid collided, ~2^-60): refuse clearly.
        raise Conflict(
            "Another signing key change happened at the same time; try again.", code="signing_key_conflict"
        ) from None
    record_audit(
        session=session,
        action="signing_key.rotated",
        actor=actor,
        target_type="signing_key",
        target_id=key.id,
        data={"kid": key.kid},
    )
    session.flush()
    return key


def _new_kid() -> str:
    return "k_" + secrets.token_urlsafe(8)[:10]


def _lock_key_changes(session: Session) -> None:
    """Serialise key changes for this transaction: one rotation at a time leaves one active key."""
    if not is_postgresql(session):
        return  # SQLite: BEGIN IMMEDIATE already made this transaction the only writer.
    previous = session.exec(select(func.current_setting("lock_timeout"))).one()
    try:
        session.exec(select(func.set_config("lock_timeout", LOCK_TIMEOUT, True)))
        session.exec(select(func.pg_advisory_xact_lock(_LOCK_ID)))
    except OperationalError as error:
        raise ServiceUnavailable("Signing keys are being changed; try again shortly.") from error
    # Give the rest of the caller's transaction back its own lock timeout.
    session.exec(select(func.set_config("lock_timeout", previous, True)))


# --- signing and verifying ------------------------------------------------------------------------


def sign_payload(*, session: Session, payload: dict[str, Any]) -> str:
    """A compact token `header.payload.signature` signed by the active key."""
    key = get_active_signing_key(session=session)
    private_key = Ed25519PrivateKey.from_private_bytes(open_secret(key.private_key_encrypted, purpose=SEAL_PURPOSE))
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": HEADER_TYPE}
    signing_input = f"{_b64encode(_canonical_json(header))}.{_b64encode(_canonical_json(payload))}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{_b64encode(signature)}"


def verify_payload(*, session: Session, token: str) -> dict[str, Any]:
    """The payload of a token we signed with a key that still verifies.

    Raises InvalidSignature (`invalid_signature`) for anything malformed, forged or under an unknown
    kid, KeyRetired (`key_retired`) for a token under a retired key.
    """
    parsed = _parse_token(token)
    key = session.exec(select(SigningKey).where(SigningKey.kid == parsed.kid)).first()
    if key is None:
        _refuse("unknown_kid", kid=parsed.kid)
    if key.status == SigningKeyStatus.RETIRED:
        raise KeyRetired(kid=key.kid, reason="key_retired")
    return _verify_parsed(parsed, key.public_key)


def verify_with_public_key(token: str, public_keys: dict[str, str]) -> dict[str, Any]:
    """`verify_payload` without a database: `public_keys` maps kid to base64url public key.

    Raises InvalidSignature for anything malformed, forged or under a kid not in `public_keys`.
    """
    parsed = _parse_token(token)
    public_key = public_keys.get(parsed.kid)
    if public_key is None:
        _refuse("unknown_kid", kid=parsed.kid)
    return _verify_parsed(parsed, public_key)


@dataclass(frozen=True)
class _ParsedToken:
    kid: str
    signing_input: bytes
    payload_segment: str
    signature: bytes


def _parse_token(token: object) -> _ParsedToken:
    """Split and check a token's shape and header; the payload is decoded only after the signature."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        _refuse("malformed")
    segments = token.split(".")
    if len(segments) != 3:
        _refuse("malformed")
    header_segment, payload_segment, signature_segment = segments
    header = _json_object(_b64decode(header_segment))
    if set(header) != {"alg", "kid", "typ"} or header["alg"] != ALGORITHM or header["typ"] != HEADER_TYPE:
        # Only the algorithm we sign with: no "none", no algorithm chosen by the token.
        _refuse("unsupported_header")
    kid = header["kid"]
    if not isinstance(kid, str) or not 0 < len(kid) <= KID_MAX_LENGTH:
        _refuse("unsupported_header")
    signature = _b64decode(signature_segment)
    if len(signature) != SIGNATURE_LENGTH:
        _refuse("bad_signature")
    _b64decode(payload_segment)  # shape only; decoded again once the signature holds
    return _ParsedToken(
        kid=kid,
        signing_input=f"{header_segment}.{payload_segment}".encode("ascii"),
        payload_segment=payload_segment,
        signature=signature,
    )


def _verify_parsed(parsed: _ParsedToken, public_key_b64: str) -> dict[str, Any]:
    # A broken key list is the scanner's fault, not the token's: say so in the reason.
    try:
        raw_public = _b64decode(public_key_b64) if isinstance(public_key_b64, str) else b""
    except InvalidSignature:
        raw_public = b""
    if len(raw_public) != PUBLIC_KEY_LENGTH:
        _refuse("bad_public_key", kid=parsed.kid)
    try:
        Ed25519PublicKey.from_public_bytes(raw_public).verify(parsed.signature, parsed.signing_input)
    except (BadSignature, ValueError):
        _refuse("bad_signature", kid=parsed.kid)
    return _json_object(_b64decode(parsed.payload_segment))


def _refuse(reason: str, **details: Any) -> NoReturn:
    raise InvalidSignature(reason=reason, **details)


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        _refuse("malformed")
    if not isinstance(value, dict):
        _refuse("malformed")
    return value


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    """Strict unpadded base64url: one spelling per value, so a token cannot be re-encoded to look new."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        _refuse("malformed")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        _refuse("malformed")
    if _b64encode(raw) != segment:  # non-zero trailing bits
        _refuse("malformed")
    return raw
