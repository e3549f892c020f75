import base64
import contextlib
import json
import threading

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from paytime_app import cli
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError, NotFound
from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.signing_keys import SigningKey, SigningKeyStatus
from paytime_app.services.crypto import open_secret
from paytime_app.services.signing_keys import (
    InvalidSignature,
    get_active_signing_key,
    list_public_keys,
    retire_signing_key,
    rotate_signing_key,
    sign_payload,
    verify_payload,
    verify_with_public_key,
)

PAYLOAD = {"ticket": "TK-123", "event": 7, "seat": None, "name": "Adé"}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def sign(payload: dict) -> str:
    return in_transaction(sign_payload, payload=payload)


def verify(token: str) -> dict:
    return in_transaction(verify_payload, token=token)


def keys_by_status() -> dict[str, list[str]]:
    with unit_of_work() as session:
        rows = session.exec(select(SigningKey)).all()
    grouped: dict[str, list[str]] = {}
    for row in rows:
        grouped.setdefault(row.status, []).append(row.kid)
    return grouped


def forge(private_key: Ed25519PrivateKey, header: bytes, payload: bytes) -> str:
    """A token signed over arbitrary bytes, to prove the checks after the signature hold too."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    return f"{signing_input}.{b64(private_key.sign(signing_input.encode()))}"


def test_sign_then_verify_round_trip(engine):
    token = sign(PAYLOAD)
    assert verify(token) == PAYLOAD
    header = json.loads(unb64(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": keys_by_status()["active"][0], "typ": "PT"}


def test_sign_payload_is_canonical_json(engine):
    token = sign({"b": 1, "a": [1, 2]})
    assert unb64(token.split(".")[1]) == b'{"a":[1,2],"b":1}'
    assert "=" not in token


def test_get_active_signing_key_first_use_creates_one(engine):
    first = in_transaction(get_active_signing_key)
    second = in_transaction(get_active_signing_key)
    assert first.kid == second.kid
    assert first.kid.startswith("k_")
    assert len(first.kid) == 12
    assert len(unb64(first.public_key)) == 32
    assert keys_by_status() == {"active": [first.kid]}


def test_rotate_old_tokens_still_verify_and_new_tokens_use_new_kid(engine):
    old_token = sign(PAYLOAD)
    old_kid = keys_by_status()["active"][0]
    new_key = in_transaction(rotate_signing_key)
    assert new_key.kid != old_kid
    assert keys_by_status() == {"active": [new_key.kid], "verify_only": [old_kid]}
    assert verify(old_token) == PAYLOAD
    new_token = sign({"n": 2})
    assert json.loads(unb64(new_token.split(".")[0]))["kid"] == new_key.kid
    assert verify(new_token) == {"n": 2}


def test_rotate_records_audit(engine):
    key = in_transaction(rotate_signing_key)
    with unit_of_work() as session:
        entries = session.exec(select(AuditLogEntry).where(AuditLogEntry.action == "signing_key.rotated")).all()
    assert [entry.data for entry in entries] == [{"kid": key.kid}]
    assert entries[0].target_id == str(key.id)


def test_retired_key_tokens_refused_with_key_retired(engine):
    old_token = sign(PAYLOAD)
    old_kid = keys_by_status()["active"][0]
    in_transaction(rotate_signing_key)
    retired = in_transaction(retire_signing_key, kid=old_kid)
    assert retired.status == SigningKeyStatus.RETIRED
    assert retired.retired_at is not None
    with pytest.raises(InvalidSignature) as refused:
        verify(old_token)
    assert refused.value.code == "key_retired"
    assert refused.value.details["kid"] == old_kid
    assert verify(sign(PAYLOAD)) == PAYLOAD, "the new key still signs and verifies"
    with unit_of_work() as session:
        actions = session.exec(select(AuditLogEntry.action, AuditLogEntry.data)).all()
    assert ("signing_key.retired", {"kid": old_kid}) in [tuple(row) for row in actions]


def test_retire_signing_key_twice_is_a_no_op(engine):
    old = in_transaction(get_active_signing_key)
    in_transaction(rotate_signing_key)
    first = in_transaction(retire_signing_key, kid=old.kid)
    second = in_transaction(retire_signing_key, kid=old.kid)
    assert second.retired_at == first.retired_at
    with unit_of_work() as session:
        retirements = session.exec(select(AuditLogEntry).where(AuditLogEntry.action == "signing_key.retired")).all()
    assert len(retirements) == 1


def test_retire_signing_key_active_refused(engine):
    active = in_transaction(get_active_signing_key)
    with pytest.raises(DomainError) as refused:
        in_transaction(retire_signing_key, kid=active.kid)
    assert refused.value.code == "active_key"
    assert keys_by_status() == {"active": [active.kid]}


def test_retire_signing_key_unknown_kid_not_found(engine):
    with pytest.raises(NotFound):
        in_transaction(retire_signing_key, kid="k_nope")


def test_verify_payload_tampered_payload_refused(engine):
    header, _payload, signature = sign(PAYLOAD).split(".")
    forged_payload = b64(json.dumps({**PAYLOAD, "ticket": "TK-999"}, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(InvalidSignature) as refused:
        verify(f"{header}.{forged_payload}.{signature}")
    assert refused.value.code == "invalid_signature"
    assert refused.value.details["reason"] == "bad_signature"


def test_verify_payload_tampered_signature_refused(engine):
    header, payload, signature = sign(PAYLOAD).split(".")
    raw = bytearray(unb64(signature))
    raw[10] ^= 0x01
    with pytest.raises(InvalidSignature) as refused:
        verify(f"{header}.{payload}.{b64(bytes(raw))}")
    assert refused.value.code == "invalid_signature"
    assert refused.value.details["reason"] == "bad_signature"


def test_verify_payload_signature_from_another_key_refused(engine):
    token = sign(PAYLOAD)
    kid = keys_by_status()["active"][0]
    header = json.dumps({"alg": "EdDSA", "kid": kid, "typ": "PT"}).encode()
    forged = forge(Ed25519PrivateKey.generate(), header, unb64(token.split(".")[1]))
    with pytest.raises(InvalidSignature) as refused:
        verify(forged)
    assert refused.value.code == "invalid_signature"


def test_verify_payload_unknown_kid_refused(engine):
    header = json.dumps({"alg": "EdDSA", "kid": "k_unknown", "typ": "PT"}).encode()
    with pytest.raises(InvalidSignature) as refused:
        verify(forge(Ed25519PrivateKey.generate(), header, b"{}"))
    assert refused.value.code == "invalid_signature"
    assert refused.value.details == {"reason": "unknown_kid", "kid": "k_unknown"}


def test_verify_payload_malformed_tokens_refused(engine):
    token = sign(PAYLOAD)
    header, payload, signature = token.split(".")
    malformed = [
        "",
        "abc",
        f"{header}.{payload}",
        f"{token}.{signature}",
        f"{header}..{signature}",
        "!!!.@@@.###",
        f"{header}.{payload}.{signature}=",
        f"{header}=.{payload}.{signature}",
        f"{b64(b'not json')}.{payload}.{signature}",
        f"{b64(b'[1,2]')}.{payload}.{signature}",
        f"{b64(b'{}')}.{payload}.{signature}",
        f"{b64(bytes([0xFF, 0xFE]))}.{payload}.{signature}",
        f"{header}.{payload}.{signature[:-4]}",
        f"{header}.{payload}.{b64(b'x' * 64)}",
        f"{header}.{payload}.{signature[:-1]}{'B' if signature[-1] == 'A' else 'A'}",
        f"{header}.{payload[:-1]}.{signature}",
        "a" * 10_000,
        "é.é.é",
        None,
        b"bytes.are.not.tokens",
        {"a": 1},
        12,
    ]
    for bad in malformed:
        with pytest.raises(InvalidSignature) as refused:
            verify(bad)
        assert refused.value.code == "invalid_signature", bad


def test_verify_payload_foreign_header_refused(engine):
    kid = in_transaction(get_active_signing_key).kid
    private_key = Ed25519PrivateKey.generate()
    headers = [
        {"alg": "none", "kid": kid, "typ": "PT"},
        {"alg": "HS256", "kid": kid, "typ": "PT"},
        {"alg": "EdDSA", "kid": kid, "typ": "JWT"},
        {"alg": "EdDSA", "kid": kid},
        {"alg": "EdDSA", "kid": kid, "typ": "PT", "jku": "https://evil.example"},
        {"alg": "EdDSA", "kid": 5, "typ": "PT"},
        {"alg": "EdDSA", "kid": "", "typ": "PT"},
        {"alg": "EdDSA", "kid": "k" * 100, "typ": "PT"},
    ]
    for header in headers:
        with pytest.raises(InvalidSignature) as refused:
            verify(forge(private_key, json.dumps(header).encode(), b"{}"))
        assert refused.value.details["reason"] == "unsupported_header", header


def test_verify_payload_signed_non_object_refused(engine):
    """Even a genuine signature over something that is not a JSON object is refused as malformed."""
    key = in_transaction(get_active_signing_key)
    private_key = Ed25519PrivateKey.from_private_bytes(open_secret(key.private_key_encrypted, purpose="signing_key"))
    header = json.dumps({"alg": "EdDSA", "kid": key.kid, "typ": "PT"}).encode()
    assert verify(forge(private_key, header, b"{}")) == {}
    for payload in (b"not json", b"[1]", b'"text"', b"NaN", b'{"a": NaN}', b"\xff"):
        with pytest.raises(InvalidSignature) as refused:
            verify(forge(private_key, header, payload))
        assert refused.value.details["reason"] == "malformed", payload


def test_verify_with_public_key_offline(engine):
    old_token = sign(PAYLOAD)
    in_transaction(rotate_signing_key)
    new_token = sign({"n": 2})
    public_keys = in_transaction(list_public_keys)
    assert [row["status"] for row in public_keys] == ["active", "verify_only"]
    offline = {row["kid"]: row["public_key"] for row in public_keys}
    # From here on no database: what a scanner does with the keys it downloaded.
    assert verify_with_public_key(old_token, offline) == PAYLOAD
    assert verify_with_public_key(new_token, offline) == {"n": 2}
    only_new = {public_keys[0]["kid"]: public_keys[0]["public_key"]}
    with pytest.raises(InvalidSignature) as refused:
        verify_with_public_key(old_token, only_new)
    assert refused.value.details["reason"] == "unknown_kid"


def test_list_public_keys_leaves_out_retired(engine):
    old = in_transaction(get_active_signing_key)
    new = in_transaction(rotate_signing_key)
    in_transaction(retire_signing_key, kid=old.kid)
    assert in_transaction(list_public_keys) == [{"kid": new.kid, "public_key": new.public_key, "status": "active"}]


def test_verify_with_public_key_bad_public_key_refused(engine):
    token = sign(PAYLOAD)
    kid = keys_by_status()["active"][0]
    for public_key in ("", "***", b64(b"short"), b64(b"x" * 33), 42):
        with pytest.raises(InvalidSignature) as refused:
            verify_with_public_key(token, {kid: public_key})
        assert refused.value.details == {"reason": "bad_public_key", "kid": kid}, public_key


_SAMPLE_KEY = Ed25519PrivateKey.generate()
_SAMPLE_KEYS = {"k_sample": b64(_SAMPLE_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))}
_SAMPLE_TOKEN = forge(_SAMPLE_KEY, b'{"alg":"EdDSA","kid":"k_sample","typ":"PT"}', b'{"ticket":"TK-1"}')


@given(st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_=-]{0,60}(\.[A-Za-z0-9_=-]{0,90}){0,3}", fullmatch=True))
def test_verify_with_public_key_any_text_raises_only_invalid_signature(token):
    with contextlib.suppress(InvalidSignature):  # anything else fails the test
        verify_with_public_key(token, _SAMPLE_KEYS)


@given(st.integers(min_value=0, max_value=len(_SAMPLE_TOKEN) - 1), st.characters(codec="ascii"))
def test_verify_with_public_key_any_changed_character_refused(position, character):
    changed = _SAMPLE_TOKEN[:position] + character + _SAMPLE_TOKEN[position + 1 :]
    if changed == _SAMPLE_TOKEN:
        assert verify_with_public_key(changed, _SAMPLE_KEYS) == {"ticket": "TK-1"}
        return
    with pytest.raises(InvalidSignature):
        verify_with_public_key(changed, _SAMPLE_KEYS)


def test_private_key_is_sealed_at_rest(engine):
    key = in_transaction(get_active_signing_key)
    with unit_of_work() as session:
        stored = session.exec(select(SigningKey).where(SigningKey.kid == key.kid)).one()
    raw_private = open_secret(stored.private_key_encrypted, purpose="signing_key")
    assert len(raw_private) == 32
    derived_public = Ed25519PrivateKey.from_private_bytes(raw_private).public_key()
    assert b64(derived_public.public_bytes(Encoding.Raw, PublicFormat.Raw)) == stored.public_key
    assert raw_private not in unb64(stored.private_key_encrypted)
    assert b64(raw_private) not in stored.private_key_encrypted
    assert raw_private.hex() not in stored.private_key_encrypted
    with pytest.raises(InvalidTag):  # sealed for one purpose only
        open_secret(stored.private_key_encrypted, purpose="totp")


def run_concurrently(target, count: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def work() -> None:
        try:
            barrier.wait()
            target()
        except BaseException as error:  # surfaced by the caller
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_rotations_leave_one_active_key(engine):
    in_transaction(get_active_signing_key)
    errors = run_concurrently(lambda: in_transaction(rotate_signing_key), 8)
    assert errors == []
    keys = keys_by_status()
    assert len(keys["active"]) == 1
    assert len(keys["verify_only"]) == 8
    assert verify(sign(PAYLOAD)) == PAYLOAD


def test_concurrent_first_use_creates_one_key(engine):
    kids: list[str] = []
    errors = run_concurrently(lambda: kids.append(in_transaction(get_active_signing_key).kid), 8)
    assert errors == []
    assert len(set(kids)) == 1
    assert keys_by_status() == {"active": [kids[0]]}


def test_cli_rotate_and_retire_signing_key(engine, capsys):
    first = in_transaction(get_active_signing_key)
    assert cli.main(["rotate-signing-key"]) == 0
    new_kid = capsys.readouterr().out.strip()
    assert keys_by_status() == {"active": [new_kid], "verify_only": [first.kid]}
    assert cli.main(["retire-signing-key", first.kid]) == 0
    assert keys_by_status() == {"active": [new_kid], "retired": [first.kid]}


def test_cli_retire_signing_key_active_refused(engine, capsys):
    active = in_transaction(get_active_signing_key)
    assert cli.main(["retire-signing-key", active.kid]) == 1
    assert "active_key" in capsys.readouterr().err
    assert keys_by_status() == {"active": [active.kid]}
