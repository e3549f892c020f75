from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import Session, select

from paytime_app import bus
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.sessions import SessionKind, UserSession
from paytime_app.models.users import User
from paytime_app.services.sessions import (
    REFRESH_REUSE_GRACE,
    ClientInfo,
    authenticate_token,
    call_as_user,
    end_session,
    issue_api_tokens,
    list_active_sessions,
    refresh_api_tokens,
    revoke_all_sessions,
    revoke_session,
    start_browser_session,
)
from paytime_app.services.users import create_user
from tests.helpers import run_at_once

CLIENT = ClientInfo(ip_address="203.0.113.7", user_agent="Firefox on a laptop")
START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def user(engine):
    return in_transaction(create_user, email="ada@example.com", display_name="Ada", password=None, email_verified=True)


@pytest.fixture
def other(engine):
    return in_transaction(create_user, email="ben@example.com", display_name="Ben", password=None, email_verified=True)


@pytest.fixture
def published(monkeypatch) -> list[dict]:
    """Messages that reached the bus (after their transaction committed)."""
    messages: list[dict] = []
    monkeypatch.setattr(bus, "publish", messages.append)
    return messages


def refusal(service, **kwargs) -> str:
    with pytest.raises(DomainError) as caught:
        in_transaction(service, **kwargs)
    return caught.value.code


def browser(user: User):
    return in_transaction(start_browser_session, user=user, client=CLIENT)


def api(user: User):
    return in_transaction(issue_api_tokens, user=user, client=CLIENT)


def authenticate(token: str | None, kind: SessionKind = SessionKind.BROWSER) -> User:
    user, _ = in_transaction(authenticate_token, token=token, kind=kind)
    return user


def auth_refusal(token: str | None, kind: SessionKind = SessionKind.BROWSER) -> str:
    return refusal(authenticate_token, token=token, kind=kind)


def refresh(refresh_token: str):
    return in_transaction(refresh_api_tokens, refresh_token=refresh_token, client=CLIENT)


def set_active(user: User, active: bool) -> None:
    with unit_of_work() as session:
        session.get(User, user.id).is_active = active


def session_row(session_id) -> UserSession:
    with unit_of_work() as session:
        return session.get(UserSession, session_id)


# --- authenticating -----------------------------------------------------------------------------


def test_browser_token_authenticates(user):
    issued = browser(user)
    assert issued.refresh_token is None
    assert issued.record.kind == SessionKind.BROWSER
    assert issued.record.ip_address == CLIENT.ip_address
    assert issued.record.user_agent == CLIENT.user_agent
    assert authenticate(issued.token).id == user.id


def test_browser_sessions_get_new_ids_and_tokens(user):
    first, second = browser(user), browser(user)
    assert first.record.id != second.record.id
    assert first.token != second.token
    assert first.token not in {first.record.token_hash, second.record.token_hash}, "only digests are stored"


def test_authenticate_without_token_refused(engine):
    assert auth_refusal(None) == "authentication_required"
    assert auth_refusal("") == "authentication_required"


def test_authenticate_unknown_token_refused(user):
    assert auth_refusal("made-up-token") == "session_expired"


def test_authenticate_revoked_session_refused(user):
    issued = browser(user)
    in_transaction(revoke_session, user=user, session_id=issued.record.id)
    assert auth_refusal(issued.token) == "session_expired"


def test_browser_session_expires_after_a_week_idle(clock, user):
    issued = browser(user)
    clock.shift(timedelta(days=7, minutes=1))
    assert auth_refusal(issued.token) == "session_expired"


def test_browser_session_use_extends_idle_expiry_up_to_30_days(clock, user):
    issued = browser(user)
    for _ in range(4):
        clock.shift(timedelta(days=6))
        assert authenticate(issued.token).id == user.id
    clock.shift(timedelta(days=6, minutes=1))  # 30 days after sign-in, though used 6 days ago
    assert auth_refusal(issued.token) == "session_expired"


def test_api_access_token_expires_after_15_minutes(clock, user):
    issued = api(user)
    clock.shift(timedelta(minutes=14))
    assert authenticate(issued.token, SessionKind.API).id == user.id
    clock.shift(timedelta(minutes=2))
    assert auth_refusal(issued.token, SessionKind.API) == "session_expired"
    assert authenticate(refresh(issued.refresh_token).token, SessionKind.API).id == user.id


def test_authenticate_disabled_user_refused(user):
    issued = browser(user)
    set_active(user, False)
    assert auth_refusal(issued.token) == "account_disabled"


def test_api_access_token_not_accepted_as_browser_session(user):
    issued = api(user)
    assert authenticate(issued.token, SessionKind.API).id == user.id
    assert auth_refusal(issued.token, SessionKind.BROWSER) == "session_expired"


def test_browser_token_not_accepted_as_api_token(user):
    issued = browser(user)
    assert auth_refusal(issued.token, SessionKind.API) == "session_expired"


def test_refresh_token_never_accepted_as_access_token(user):
    issued = api(user)
    assert auth_refusal(issued.refresh_token, SessionKind.API) == "session_expired"
    assert auth_refusal(issued.refresh_token, SessionKind.BROWSER) == "session_expired"


def test_browser_token_not_accepted_as_refresh_token(user):
    issued = browser(user)
    assert refusal(refresh_api_tokens, refresh_token=issued.token, client=CLIENT) == "invalid_refresh_token"


# --- refreshing API tokens ----------------------------------------------------------------------


def test_refresh_rotates_both_tokens(user):
    issued = api(user)
    rotated = refresh(issued.refresh_token)
    assert rotated.record.id == issued.record.id, "the same session (one row in the device list)"
    assert rotated.token != issued.token
    assert rotated.refresh_token != issued.refresh_token
    assert authenticate(rotated.token, SessionKind.API).id == user.id
    assert auth_refusal(issued.token, SessionKind.API) == "session_expired"
    assert refresh(rotated.refresh_token).record.id == issued.record.id


def test_refresh_reused_old_refresh_token_refused(user):
    issued = api(user)
    refresh(issued.refresh_token)
    assert refusal(refresh_api_tokens, refresh_token=issued.refresh_token, client=CLIENT) == "invalid_refresh_token"


def test_refresh_reused_old_refresh_token_revokes_session(clock, user):
    issued = api(user)
    rotated = refresh(issued.refresh_token)
    clock.shift(REFRESH_REUSE_GRACE + timedelta(seconds=1))
    with pytest.raises(DomainError):
        refresh(issued.refresh_token)  # the thief (or the victim) presents the old token
    assert auth_refusal(rotated.token, SessionKind.API) == "session_expired"
    assert refusal(refresh_api_tokens, refresh_token=rotated.refresh_token, client=CLIENT) == "session_expired"


def test_refresh_reused_within_grace_is_refused_but_keeps_session(user):
    issued = api(user)
    rotated = refresh(issued.refresh_token)
    assert refusal(refresh_api_tokens, refresh_token=issued.refresh_token, client=CLIENT) == "invalid_refresh_token"
    assert refresh(rotated.refresh_token).token


def test_refresh_revoked_session_refused(user):
    issued = api(user)
    in_transaction(revoke_session, user=user, session_id=issued.record.id)
    assert refusal(refresh_api_tokens, refresh_token=issued.refresh_token, client=CLIENT) == "session_expired"


def test_refresh_after_30_days_refused(clock, user):
    issued = api(user)
    clock.shift(timedelta(days=30, seconds=1))
    assert refusal(refresh_api_tokens, refresh_token=issued.refresh_token, client=CLIENT) == "session_expired"


def test_refresh_disabled_user_refused(user):
    issued = api(user)
    set_active(user, False)
    assert refusal(refresh_api_tokens, refresh_token=issued.refresh_token, client=CLIENT) == "account_disabled"


def test_concurrent_refresh_with_same_token_succeeds_once(user):
    issued = api(user)
    count = 6
    outcomes = run_at_once(count, lambda: refresh(issued.refresh_token))
    winners = [outcome for outcome in outcomes if not isinstance(outcome, str)]
    assert len(winners) == 1
    assert sorted(outcome for outcome in outcomes if isinstance(outcome, str)) == ["invalid_refresh_token"] * (
        count - 1
    )
    assert authenticate(winners[0].token, SessionKind.API).id == user.id
    assert refresh(winners[0].refresh_token).record.id == issued.record.id


# --- the device list and signing out ------------------------------------------------------------


def test_revoke_session_of_another_user_not_found(user, other):
    theirs = browser(other)
    with pytest.raises(DomainError) as caught:
        in_transaction(revoke_session, user=user, session_id=theirs.record.id)
    assert caught.value.code == "not_found"
    assert session_row(theirs.record.id).revoked_at is None
    assert authenticate(theirs.token).id == other.id


def test_revoke_session_records_reason_once(user):
    issued = browser(user)
    first = in_transaction(revoke_session, user=user, session_id=issued.record.id)
    again = in_transaction(revoke_session, user=user, session_id=issued.record.id, reason="other")
    assert first.revoked_reason == again.revoked_reason == "signed_out"
    assert again.revoked_at == first.revoked_at


def test_revoke_all_sessions_keeps_the_given_session(user, other):
    current, laptop, phone = browser(user), browser(user), api(user)
    theirs = browser(other)
    ended = in_transaction(
        revoke_all_sessions, user=user, reason="signed_out_everywhere", keep_session_id=current.record.id
    )
    assert sorted(ended) == sorted([laptop.record.id, phone.record.id])
    assert authenticate(current.token).id == user.id
    assert auth_refusal(laptop.token) == "session_expired"
    assert auth_refusal(phone.token, SessionKind.API) == "session_expired"
    assert authenticate(theirs.token).id == other.id
    assert session_row(laptop.record.id).revoked_reason == "signed_out_everywhere"


def test_revoke_all_sessions_announces_ended_sessions_after_commit(user, published):
    current, laptop = browser(user), browser(user)
    with pytest.raises(RuntimeError), unit_of_work() as session:
        revoke_all_sessions(session=session, user=user, reason="x", keep_session_id=current.record.id)
        raise RuntimeError("rolled back")
    assert published == []
    in_transaction(revoke_all_sessions, user=user, reason="x", keep_session_id=current.record.id)
    assert published == [{"topic": "sessions.ended", "session_ids": [str(laptop.record.id)]}]


def test_revoke_session_announces_once(user, published):
    issued = browser(user)
    in_transaction(revoke_session, user=user, session_id=issued.record.id)
    in_transaction(revoke_session, user=user, session_id=issued.record.id)
    assert published == [{"topic": "sessions.ended", "session_ids": [str(issued.record.id)]}]


def test_revoke_all_sessions_without_keep_ends_every_session(user):
    first, second = browser(user), browser(user)
    in_transaction(revoke_all_sessions, user=user, reason="password_reset")
    assert auth_refusal(first.token) == "session_expired"
    assert auth_refusal(second.token) == "session_expired"
    assert in_transaction(revoke_all_sessions, user=user, reason="again") == []


def test_list_active_sessions_excludes_revoked_and_other_users(user, other):
    kept, revoked, phone = browser(user), browser(user), api(user)
    browser(other)
    in_transaction(revoke_session, user=user, session_id=revoked.record.id)
    listed = in_transaction(list_active_sessions, user=user)
    assert sorted(row.id for row in listed) == sorted([kept.record.id, phone.record.id])


def test_list_active_sessions_most_recently_used_first(clock, user):
    older, newer = browser(user), browser(user)
    clock.shift(timedelta(minutes=5))
    authenticate(older.token)
    listed = in_transaction(list_active_sessions, user=user)
    assert [row.id for row in listed] == [older.record.id, newer.record.id]


def test_list_active_sessions_excludes_sessions_past_30_days(clock, user):
    browser(user)
    clock.shift(timedelta(days=30, seconds=1))
    assert in_transaction(list_active_sessions, user=user) == []


def test_list_active_sessions_excludes_idle_expired_browser_session(clock, user):
    issued = browser(user)
    clock.shift(timedelta(days=8))
    assert auth_refusal(issued.token) == "session_expired"
    assert in_transaction(list_active_sessions, user=user) == []


def test_end_session_revokes_and_announces_after_commit(user, published):
    issued = browser(user)
    in_transaction(end_session, token=issued.token)
    assert auth_refusal(issued.token) == "session_expired"
    assert session_row(issued.record.id).revoked_reason == "signed_out"
    assert published == [{"topic": "sessions.ended", "session_ids": [str(issued.record.id)]}]
    in_transaction(end_session, token=issued.token)
    in_transaction(end_session, token=None)
    assert len(published) == 1, "nothing more to announce"


def test_end_session_rolled_back_announces_nothing(user, published):
    issued = browser(user)
    with pytest.raises(RuntimeError), unit_of_work() as session:
        end_session(session=session, token=issued.token)
        raise RuntimeError("the request failed")
    assert published == []
    assert authenticate(issued.token).id == user.id


# --- calling services as the signed-in user -----------------------------------------------------


def whoami(*, session: Session, actor: User, note: str) -> tuple:
    row = session.exec(select(User).where(User.id == actor.id)).one()
    return row.email, note


def test_call_as_user_runs_service_with_actor(user):
    issued = browser(user)
    assert call_as_user(whoami, token=issued.token, session_kind=SessionKind.BROWSER, note="hi") == (
        "ada@example.com",
        "hi",
    )


def test_call_as_user_passes_user_under_another_name(user):
    issued = browser(user)

    def own_email(*, session: Session, user: User) -> str:
        return user.email

    assert (
        call_as_user(own_email, token=issued.token, session_kind=SessionKind.BROWSER, actor_param="user") == user.email
    )


def test_call_as_user_revoked_token_refused_before_service_runs(user):
    issued = browser(user)
    in_transaction(revoke_session, user=user, session_id=issued.record.id)
    calls: list = []

    def service(**kwargs) -> None:
        calls.append(kwargs)

    with pytest.raises(DomainError) as caught:
        call_as_user(service, token=issued.token, session_kind=SessionKind.BROWSER)
    assert caught.value.code == "session_expired"
    assert calls == []


def test_call_as_user_wrong_kind_or_disabled_refused(user):
    issued = api(user)
    with pytest.raises(DomainError) as caught:
        call_as_user(whoami, token=issued.token, session_kind=SessionKind.BROWSER, note="x")
    assert caught.value.code == "session_expired"
    set_active(user, False)
    with pytest.raises(DomainError) as caught:
        call_as_user(whoami, token=issued.token, session_kind=SessionKind.API, note="x")
    assert caught.value.code == "account_disabled"


def test_call_as_user_service_failure_rolls_back(user):
    issued = browser(user)

    def rename_then_fail(*, session: Session, actor: User) -> None:
        session.get(User, actor.id).display_name = "Changed"
        session.flush()
        raise DomainError("no", code="refused")

    with pytest.raises(DomainError):
        call_as_user(rename_then_fail, token=issued.token, session_kind=SessionKind.BROWSER)
    with unit_of_work() as session:
        assert session.get(User, user.id).display_name == "Ada"
