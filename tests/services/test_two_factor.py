import base64
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest
import time_machine
from sqlalchemy import text
from sqlmodel import select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.credentials import RecoveryCode, TotpCredential
from paytime_app.models.users import Role
from paytime_app.services.crypto import digest_code, open_secret
from paytime_app.services.two_factor import (
    TwoFactorError,
    begin_totp_enrollment,
    confirm_totp_enrollment,
    disable_two_factor,
    has_two_factor,
    regenerate_recovery_codes,
    reset_two_factor,
    verify_second_factor,
)
from paytime_app.services.users import create_user
from tests.helpers import run_at_once

# Ten seconds into a 30-second TOTP step, so shifting by whole steps never lands on a boundary.
START = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
STEP = 30
RECOVERY_FORMAT = re.compile(r"[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}")


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def user(engine):
    return in_transaction(create_user, email="ada@example.com", display_name="Ada", password=None)


def code_at(secret: str, *, steps: int = 0) -> str:
    """The code an authenticator shows `steps` time steps away from the frozen clock."""
    return pyotp.TOTP(secret).at(datetime.now(UTC).timestamp() + steps * STEP)


def enroll(user) -> tuple[str, list[str]]:
    enrollment = in_transaction(begin_totp_enrollment, user=user)
    codes = in_transaction(confirm_totp_enrollment, user=user, code=code_at(enrollment.secret))
    return enrollment.secret, codes


def refusal(service, **kwargs) -> str:
    with pytest.raises(TwoFactorError) as caught:
        in_transaction(service, **kwargs)
    return caught.value.code


def audit_actions(user) -> list[str]:
    with unit_of_work() as session:
        entries = session.exec(select(AuditLogEntry).where(AuditLogEntry.target_id == str(user.id))).all()
        return sorted(entry.action for entry in entries)


def test_confirm_enrollment_correct_code_returns_ten_recovery_codes(clock, user):
    assert in_transaction(has_two_factor, user=user) is False
    _, codes = enroll(user)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(RECOVERY_FORMAT.fullmatch(code) for code in codes)
    assert in_transaction(has_two_factor, user=user) is True
    assert audit_actions(user) == ["two_factor.enabled"]


def test_begin_enrollment_gives_provisioning_uri_and_qr_image(clock, user):
    enrollment = in_transaction(begin_totp_enrollment, user=user)
    assert re.fullmatch(r"[A-Z2-7]{32}", enrollment.secret)
    uri = urlparse(enrollment.provisioning_uri)
    assert uri.scheme == "otpauth"
    assert uri.netloc == "totp"
    assert unquote(uri.path) == "/PayTime:ada@example.com"
    assert parse_qs(uri.query)["issuer"] == ["PayTime"]
    assert parse_qs(uri.query)["secret"] == [enrollment.secret]
    prefix = "data:image/svg+xml;base64,"
    assert enrollment.qr_svg_data_url.startswith(prefix)
    assert base64.b64decode(enrollment.qr_svg_data_url.removeprefix(prefix)).startswith(b"<svg")
    assert in_transaction(has_two_factor, user=user) is False, "not enforced before confirmation"


def test_confirm_enrollment_wrong_code_refused(clock, user):
    enrollment = in_transaction(begin_totp_enrollment, user=user)
    wrong = f"{(int(code_at(enrollment.secret)) + 1) % 1_000_000:06d}"
    assert refusal(confirm_totp_enrollment, user=user, code=wrong) == "invalid_code"
    assert in_transaction(has_two_factor, user=user) is False
    with unit_of_work() as session:
        assert session.exec(select(RecoveryCode)).all() == []


def test_confirm_enrollment_without_begin_refused(clock, user):
    assert refusal(confirm_totp_enrollment, user=user, code="123456") == "totp_enrollment_not_started"


def test_begin_enrollment_when_enabled_refused(clock, user):
    enroll(user)
    assert refusal(begin_totp_enrollment, user=user) == "totp_already_enabled"
    assert refusal(confirm_totp_enrollment, user=user, code="123456") == "totp_already_enabled"


def test_begin_enrollment_twice_replaces_pending_secret(clock, user):
    first = in_transaction(begin_totp_enrollment, user=user)
    second = in_transaction(begin_totp_enrollment, user=user)
    assert first.secret != second.secret
    with unit_of_work() as session:
        assert len(session.exec(select(TotpCredential)).all()) == 1
    if code_at(first.secret) != code_at(second.secret):
        assert refusal(confirm_totp_enrollment, user=user, code=code_at(first.secret)) == "invalid_code"
    assert len(in_transaction(confirm_totp_enrollment, user=user, code=code_at(second.secret))) == 10


def test_totp_secret_sealed_at_rest(clock, user):
    secret, _ = enroll(user)
    with unit_of_work() as session:
        stored = session.execute(text("SELECT secret_encrypted FROM totp_credential")).scalar_one()
    assert secret not in stored
    assert secret.lower() not in stored.lower()
    assert open_secret(stored, purpose="totp").decode() == secret


def test_verify_totp_code_accepted(clock, user):
    secret, _ = enroll(user)
    clock.shift(STEP)
    assert in_transaction(verify_second_factor, user=user, code=code_at(secret)) == "totp"


def test_verify_totp_code_with_spaces_accepted(clock, user):
    secret, _ = enroll(user)
    clock.shift(STEP)
    code = code_at(secret)
    assert in_transaction(verify_second_factor, user=user, code=f" {code[:3]} {code[3:]} ") == "totp"


def test_verify_totp_code_twice_refused_as_replay(clock, user):
    secret, _ = enroll(user)
    clock.shift(STEP)
    code = code_at(secret)
    assert in_transaction(verify_second_factor, user=user, code=code) == "totp"
    assert refusal(verify_second_factor, user=user, code=code) == "code_already_used"
    clock.shift(10)
    assert refusal(verify_second_factor, user=user, code=code) == "code_already_used", "still in its step"


def test_confirm_code_replayed_at_sign_in_refused(clock, user):
    enrollment = in_transaction(begin_totp_enrollment, user=user)
    code = code_at(enrollment.secret)
    in_transaction(confirm_totp_enrollment, user=user, code=code)
    assert refusal(verify_second_factor, user=user, code=code) == "code_already_used"


def test_verify_totp_code_from_previous_step_accepted(clock, user):
    secret, _ = enroll(user)
    clock.shift(5 * STEP)
    assert in_transaction(verify_second_factor, user=user, code=code_at(secret, steps=-1)) == "totp"


def test_verify_totp_code_from_next_step_accepted(clock, user):
    secret, _ = enroll(user)
    clock.shift(5 * STEP)
    assert in_transaction(verify_second_factor, user=user, code=code_at(secret, steps=1)) == "totp"


def test_verify_totp_code_two_steps_old_refused(clock, user):
    secret, _ = enroll(user)
    clock.shift(5 * STEP)
    stale = code_at(secret, steps=-2)
    if stale in {code_at(secret, steps=offset) for offset in (-1, 0, 1)}:
        pytest.skip("the stale code happens to equal a current one")
    assert refusal(verify_second_factor, user=user, code=stale) == "invalid_code"


def test_verify_older_step_after_newer_used_refused(clock, user):
    secret, _ = enroll(user)
    clock.shift(5 * STEP)
    older, newer = code_at(secret, steps=-1), code_at(secret)
    if older == newer:
        pytest.skip("both steps happen to show the same code")
    assert in_transaction(verify_second_factor, user=user, code=newer) == "totp"
    assert refusal(verify_second_factor, user=user, code=older) == "code_already_used"


def test_verify_wrong_code_refused(clock, user):
    secret, _ = enroll(user)
    clock.shift(5 * STEP)
    valid = {code_at(secret, steps=offset) for offset in (-1, 0, 1)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)
    assert refusal(verify_second_factor, user=user, code=wrong) == "invalid_code"
    assert refusal(verify_second_factor, user=user, code="not-a-code") == "invalid_code"
    assert refusal(verify_second_factor, user=user, code="") == "invalid_code"


def test_verify_without_two_factor_refused(clock, user):
    assert refusal(verify_second_factor, user=user, code="123456") == "two_factor_not_enabled"
    enrollment = in_transaction(begin_totp_enrollment, user=user)
    code = code_at(enrollment.secret)
    assert refusal(verify_second_factor, user=user, code=code) == "two_factor_not_enabled", "pending only"


def test_recovery_code_works_once(clock, user):
    _, codes = enroll(user)
    assert in_transaction(verify_second_factor, user=user, code=codes[0]) == "recovery_code"
    assert refusal(verify_second_factor, user=user, code=codes[0]) == "code_already_used"
    assert in_transaction(verify_second_factor, user=user, code=codes[1]) == "recovery_code"
    assert audit_actions(user).count("two_factor.recovery_code_used") == 2


def test_recovery_code_typed_loosely_accepted(clock, user):
    _, codes = enroll(user)
    loose = f"  {codes[0].replace('-', ' ').upper()} "
    assert in_transaction(verify_second_factor, user=user, code=loose) == "recovery_code"
    assert refusal(verify_second_factor, user=user, code=codes[0].replace("-", "")) == "code_already_used"


def test_recovery_code_of_another_user_refused(clock, user):
    other = in_transaction(create_user, email="grace@example.com", display_name="Grace", password=None)
    enroll(user)
    _, other_codes = enroll(other)
    assert refusal(verify_second_factor, user=user, code=other_codes[0]) == "invalid_code"
    assert in_transaction(verify_second_factor, user=other, code=other_codes[0]) == "recovery_code"


def test_recovery_codes_stored_hashed(clock, user):
    _, codes = enroll(user)
    with unit_of_work() as session:
        rows = session.execute(text("SELECT code_hash FROM recovery_code")).scalars().all()
    assert len(rows) == 10
    stored = " ".join(rows)
    for code in codes:
        assert code not in stored
        assert code.replace("-", "") not in stored
    assert sorted(rows) == sorted(digest_code(code.replace("-", ""), purpose="recovery") for code in codes)


def test_disable_two_factor_requires_valid_code(clock, user):
    secret, _ = enroll(user)
    clock.shift(STEP)
    code = code_at(secret)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    if wrong in {code_at(secret, steps=offset) for offset in (-1, 1)}:
        pytest.skip("the wrong code happens to be valid in a neighbouring step")
    assert refusal(disable_two_factor, user=user, code=wrong) == "invalid_code"
    assert in_transaction(has_two_factor, user=user) is True
    in_transaction(disable_two_factor, user=user, code=code)
    assert in_transaction(has_two_factor, user=user) is False
    with unit_of_work() as session:
        assert session.exec(select(TotpCredential)).all() == []
        assert session.exec(select(RecoveryCode)).all() == []
    assert "two_factor.disabled" in audit_actions(user)
    assert refusal(disable_two_factor, user=user, code=code) == "two_factor_not_enabled"


def test_disable_two_factor_with_replayed_code_refused(clock, user):
    secret, _ = enroll(user)
    clock.shift(STEP)
    code = code_at(secret)
    in_transaction(verify_second_factor, user=user, code=code)
    assert refusal(disable_two_factor, user=user, code=code) == "code_already_used"
    assert in_transaction(has_two_factor, user=user) is True


def test_disable_two_factor_with_recovery_code(clock, user):
    _, codes = enroll(user)
    in_transaction(disable_two_factor, user=user, code=codes[3])
    assert in_transaction(has_two_factor, user=user) is False


def test_enroll_again_after_disable(clock, user):
    secret, _ = enroll(user)
    clock.shift(STEP)
    in_transaction(disable_two_factor, user=user, code=code_at(secret))
    clock.shift(STEP)
    new_secret, codes = enroll(user)
    assert new_secret != secret
    assert len(codes) == 10


def test_regenerate_recovery_codes_replaces_old_ones(clock, user):
    secret, old_codes = enroll(user)
    clock.shift(STEP)
    new_codes = in_transaction(regenerate_recovery_codes, user=user, code=code_at(secret))
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)
    assert refusal(verify_second_factor, user=user, code=old_codes[0]) == "invalid_code"
    assert in_transaction(verify_second_factor, user=user, code=new_codes[0]) == "recovery_code"
    with unit_of_work() as session:
        assert len(session.exec(select(RecoveryCode)).all()) == 10
    assert "two_factor.recovery_codes_regenerated" in audit_actions(user)


def test_regenerate_recovery_codes_wrong_code_refused(clock, user):
    _, old_codes = enroll(user)
    assert refusal(regenerate_recovery_codes, user=user, code="not-a-code") == "invalid_code"
    assert in_transaction(verify_second_factor, user=user, code=old_codes[0]) == "recovery_code"


def test_reset_two_factor_by_admin(clock, user):
    admin = in_transaction(create_user, email="root@example.com", display_name="Root", password=None, role=Role.ADMIN)
    enroll(user)
    in_transaction(reset_two_factor, user=user, actor=admin)
    assert in_transaction(has_two_factor, user=user) is False
    with unit_of_work() as session:
        entry = session.exec(select(AuditLogEntry).where(AuditLogEntry.action == "two_factor.reset")).one()
        assert entry.actor_id == admin.id
        assert entry.target_id == str(user.id)
        assert session.exec(select(RecoveryCode)).all() == []
    assert refusal(reset_two_factor, user=user, actor=admin) == "two_factor_not_enabled"


def test_concurrent_same_totp_code_accepted_once(clock, user):
    secret, _ = enroll(user)
    clock.shift(STEP)
    code = code_at(secret)
    results = run_at_once(8, lambda: in_transaction(verify_second_factor, user=user, code=code))
    assert results.count("totp") == 1
    # The rest are refused: as a replay, or by the code-entry rate limit (5 per 15 minutes per user).
    assert set(results) - {"totp"} <= {"code_already_used", "rate_limited"}


def test_concurrent_same_recovery_code_accepted_once(clock, user):
    _, codes = enroll(user)
    results = run_at_once(8, lambda: in_transaction(verify_second_factor, user=user, code=codes[0]))
    assert results.count("recovery_code") == 1
    assert set(results) - {"recovery_code"} <= {"code_already_used", "rate_limited"}
