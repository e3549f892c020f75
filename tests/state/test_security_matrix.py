"""Every state event handler, called anonymously, as the wrong role and with other users' ids.

Any client can call any handler with any arguments over the websocket, so each one is listed here:
public handlers by name, every other one is called with hostile arguments and must change nothing
and show nothing. A handler added without a row here fails `test_every_handler_is_in_the_matrix`.
"""

from __future__ import annotations

import asyncio
import uuid
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from reflex import UploadFile
from sqlmodel import col, func, select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.bookings import Booking
from paytime_app.models.credentials import TotpCredential
from paytime_app.models.events import Event, TicketType
from paytime_app.models.friends import Friendship
from paytime_app.models.ious import Iou
from paytime_app.models.jobs import Job
from paytime_app.models.ledger import LedgerEntry
from paytime_app.models.notifications import Notification
from paytime_app.models.payments import Payment, PaymentPurpose
from paytime_app.models.sellers import SellerApplication
from paytime_app.models.sessions import UserSession
from paytime_app.models.users import Role, User
from paytime_app.services.friends import accept_friend_request, send_friend_request
from paytime_app.services.ious import open_iou
from paytime_app.services.payments import create_payment
from paytime_app.services.sessions import ClientInfo, start_browser_session
from paytime_app.services.users import create_user
from paytime_app.state.account import AccountState
from paytime_app.state.accounts import PasswordResetState, SignInState, SignUpState, VerifyEmailState
from paytime_app.state.admin import AdminJobsState, AdminUsersState, AuditLogState
from paytime_app.state.auth import AuthState
from paytime_app.state.calls import CallsState
from paytime_app.state.checkout import MockCheckoutState
from paytime_app.state.events import BookingState, EventsState, EventState, TicketsState
from paytime_app.state.friends import FriendsState
from paytime_app.state.ious import IousState
from paytime_app.state.mailbox import MailboxState
from paytime_app.state.notifications import NotificationsState
from paytime_app.state.organizer import AdminSellersState, OrganizerEventState, OrganizerState, SellState
from paytime_app.state.payments_admin import PaymentsDashboardState
from paytime_app.state.transfers import TransfersState
from paytime_app.state.wallet import WalletState
from tests.helpers import dead_job
from tests.state.harness import make_state, run_handler

# Handlers anyone may call: they act only on what the caller proves (a password, a link, a code).
PUBLIC = {
    AuthState: {"load_viewer", "require_viewer", "sign_out"},
    SignInState: {"load_sign_in", "submit_password", "submit_code", "start_over", "resend_verification_email"},
    SignUpState: {"load_sign_up", "submit_sign_up"},
    VerifyEmailState: {"load_verification"},
    PasswordResetState: {"load_forgot_password", "submit_reset_request", "load_reset_password", "submit_new_password"},
    MailboxState: {"load_messages", "filter_by_address"},  # dev mode only; the service refuses in production
    # The mock provider's hosted page: like a real provider's, reached by an unguessable checkout id.
    MockCheckoutState: {"load_checkout", "pay", "fail"},
    # Published events are public; booking needs a signed-in buyer (submit_booking, below).
    EventsState: {"load_events", "search", "filter_venue", "filter_when", "go_to_page"},
    EventState: {"load_event"},
}

# Data each protected state shows; it must stay empty for a refused caller.
SHOWN = {
    AccountState: ("email", "sessions", "linked_providers", "enrollment_secret", "recovery_codes"),
    AdminUsersState: ("rows",),
    AuditLogState: ("entries",),
    AdminJobsState: ("rows",),
    WalletState: ("wallets", "history", "payments"),
    CallsState: ("credits", "calls", "totals", "live_call_id"),
    FriendsState: ("friend_code", "friends", "incoming", "outgoing", "blocked", "results"),
    IousState: ("ious", "owe_totals", "owed_totals", "by_friend", "friends"),
    TransfersState: ("friends", "notice"),
    NotificationsState: ("notifications", "unread"),
    BookingState: ("booking", "items"),
    TicketsState: ("tickets", "bookings"),
    SellState: ("status", "organisation", "notice"),
    OrganizerState: ("events", "is_seller"),
    OrganizerEventState: ("event", "sales", "coupons", "bookings", "notice", "editor_open"),
    AdminSellersState: ("rows", "notice"),
    EventState: ("types", "error"),
    PaymentsDashboardState: ("rows", "cards", "activity", "detail", "timeline", "revenue_chart", "method_chart"),
}


def protected_calls(
    victim: User,
    victim_session: UserSession,
    victim_payment_id: str = "00000000-0000-0000-0000-000000000000",
    victim_job_id: str = "00000000-0000-0000-0000-000000000000",
) -> dict[type, dict[str, tuple[Any, ...]]]:
    nil = "00000000-0000-0000-0000-000000000000"
    victim_id = str(victim.id)
    return {
        FriendsState: {
            "load_friends": (),
            "refresh": (),
            "search": ({"q": "victim"},),
            "send_request": (victim_id,),
            "accept": (nil,),
            "decline": (nil,),
            "cancel_request": (nil,),
            "remove_friend": (victim_id,),
            "block": (victim_id,),
            "unblock": (victim_id,),
        },
        IousState: {
            "load_ious": (),
            "refresh": (),
            "show_direction": ("owed",),
            "filter_status": ("paid",),
            "submit_iou": ({"lender_id": victim_id, "amount": "10", "currency": "NGN", "method": "cash"},),
            "pay": (nil,),
            "claim_cash": (nil,),
            "confirm_cash": (nil,),
            "dispute_cash": (nil,),
            "acknowledge": (nil,),
            "cancel": (nil,),
        },
        TransfersState: {
            "load_transfer_form": (),
            "submit_transfer": ({"to_user_id": victim_id, "amount": "10", "currency": "NGN"},),
            "submit_step_up": ({"code": "123456"},),
            "cancel_step_up": (),
            "choose_friend": ("00000000-0000-0000-0000-000000000000",),
        },
        NotificationsState: {"load_notifications": (), "open_centre": (True,), "read_all": ()},
        EventState: {"submit_booking": ({"qty_" + victim_payment_id: "1", "coupon": ""},)},
        BookingState: {
            "load_booking": (),
            "refresh": (),
            "tick": (),
            "save_names": ({"names_" + victim_payment_id: "Mallory"},),
            "pay_with_wallet": (),
            "pay_with_card": (),
            "cancel": (),
        },
        TicketsState: {"load_tickets": (), "refresh": ()},
        SellState: {
            "load_sell": (),
            "refresh": (),
            "submit_application": (
                {"organisation": "Org", "contact_email": "a@b.co", "payout_country": "NG", "contact_phone": ""},
            ),
        },
        OrganizerState: {
            "load_organizer": (),
            "submit_event": ({"title": "Mine", "starts_at": "2031-01-01T10:00", "ends_at": "2031-01-01T12:00"},),
        },
        OrganizerEventState: {
            "load_event": (),
            "refresh": (),
            "save_details": ({"title": "Taken", "starts_at": "2031-01-01T10:00", "ends_at": "2031-01-01T12:00"},),
            "open_type_editor": (victim_payment_id,),
            "set_editor_open": (True,),
            "add_attribute_row": (),
            "remove_attribute_row": ("row",),
            "add_tier_row": (),
            "remove_tier_row": ("row",),
            "save_ticket_type": ({"name": "Free", "price": "0", "capacity": "5"},),
            "upload_cover": ([UploadFile(file=BytesIO(b"GIF89a"), path=Path("cover.gif"))],),
            "cover_rejected": ([{"errors": [{"code": "file-too-large"}]}],),
            "cover_upload_progress": ({"progress": 0.5},),
            "remove_cover": (),
            "add_coupon": ({"code": "FREE100", "kind": "percent", "value": "100", "max_redemptions": ""},),
            "publish": (),
            "cancel_event": (),
            "duplicate": (),
            "search_bookings": ({"q": "victim"},),
        },
        AdminSellersState: {
            "load_applications": (),
            "approve": (str(victim.id),),
            "reject": ({"application_id": str(victim.id), "reason": "nope"},),
        },
        CallsState: {
            "load_calls": (),
            "refresh": (),
            "tick": (),
            "submit_call": ({"callee": victim.email, "call_type": "audio", "currency": "NGN"},),
            "answer": (),
            "decline": (),
            "hang_up": (),
            "buy_credits": ({"amount": "10", "currency": "NGN"},),
            "filter_status": ("ended",),
        },
        WalletState: {
            "load_wallet": (),
            "refresh": (),
            "show_history": ("wallet:NGN",),
            "go_to_history_page": (1,),
            "submit_top_up": ({"amount": "100", "currency": "NGN", "provider": "mock", "purpose": "wallet_topup"},),
            "verify": (victim_payment_id,),
        },
        AccountState: {
            "load_account": (),
            "start_two_factor": (),
            "confirm_two_factor": ({"code": "123456"},),
            "cancel_two_factor_setup": (),
            "dismiss_recovery_codes": (),
            "turn_off_two_factor": ({"code": "123456"},),
            "new_recovery_codes": ({"code": "123456"},),
            "unlink_provider": ("google",),
            "sign_out_device": (str(victim_session.id),),
            "sign_out_all_devices": (),
        },
        AdminUsersState: {
            "load_users": (),
            "search": ({"q": "victim"},),
            "filter_role": ("all",),
            "go_to_page": (1,),
            "change_role": (str(victim.id), "super_admin"),
            "disable_user": (str(victim.id),),
            "enable_user": (str(victim.id),),
            "reset_two_factor": (str(victim.id),),
            "submit_new_user": ({"name": "Mallory", "email": "mallory@example.com", "role": "admin"},),
        },
        AuditLogState: {"load_audit_log": (), "search": ({"q": ""},), "go_to_page": (1,)},
        AdminJobsState: {"load_jobs": (), "go_to_page": (1,), "retry": (victim_job_id,)},
        PaymentsDashboardState: {
            "load_dashboard": (),
            "refresh": (),
            "apply_filters": ({"q": "victim", "status": "succeeded"},),
            "clear_filters": (),
            "sort_by": ("amount",),
            "set_page_size": ("50",),
            "go_to_page": (2,),
            "set_chart_days": ("90",),
            "open_payment": (victim_payment_id,),
            "close_drawer": (),
            "set_drawer_open": (False,),
            "submit_refund": ({"amount": "50", "reason": "hostile"},),
            "submit_note": ({"note": "hostile"},),
            "send_to_reconciliation": (),
            "start_export": (),
        },
    }


def all_states() -> list[type]:
    found, pending = [], [AuthState]
    while pending:
        state = pending.pop()
        found.append(state)
        pending.extend(state.__subclasses__())
    return found


def own_handlers(state: type) -> set[str]:
    inherited = set().union(
        *(parent.event_handlers for parent in state.__mro__[1:] if hasattr(parent, "event_handlers"))
    )
    return {name for name in state.event_handlers if name not in inherited or state is AuthState} - {"setvar"}


def test_every_handler_is_in_the_matrix(engine):
    victim = in_transaction(create_user, email="v@example.com", display_name="V", password=None)
    listed = protected_calls(victim, UserSession(id=uuid.uuid4()))
    for state in all_states():
        known = PUBLIC.get(state, set()) | set(listed.get(state, {}))
        assert own_handlers(state) <= known, f"{state.__name__}: classify {own_handlers(state) - known}"


def snapshot() -> tuple:
    with unit_of_work() as session:
        users = tuple(session.exec(select(User.id, User.role, User.is_active).order_by(User.email)).all())
        revoked = session.exec(select(func.count()).where(col(UserSession.revoked_at).is_not(None))).one()
        audit = session.exec(select(func.count()).select_from(AuditLogEntry)).one()
        payments = tuple(session.exec(select(Payment.id, Payment.status).order_by(Payment.reference)).all())
        ledger = session.exec(select(func.count()).select_from(LedgerEntry)).one()
        totp = session.exec(select(func.count()).select_from(TotpCredential)).one()
        friendships = tuple(session.exec(select(Friendship.id, Friendship.status).order_by(Friendship.id)).all())
        ious = tuple(session.exec(select(Iou.id, Iou.status, Iou.cash_claimed_at).order_by(Iou.id)).all())
        notifications = tuple(
            session.exec(select(Notification.id, Notification.read_at).order_by(Notification.id)).all()
        )
        selling = tuple(
            session.exec(select(func.count()).select_from(model)).one()
            for model in (Booking, Event, TicketType, SellerApplication)
        )
        jobs = tuple(session.exec(select(Job.id, Job.status, Job.attempts).order_by(Job.id)).all())
    return users, revoked, audit, totp, payments, ledger, friendships, ious, notifications, selling, jobs


def mail_job_that_gave_up() -> Job:
    return dead_job(
        "mail.deliver", {"mail_id": str(uuid.uuid4())}, "SMTPServerDisconnected: Connection unexpectedly closed"
    )


@pytest.fixture
def people(engine):
    def person(email: str, role: Role) -> tuple[User, str, UserSession]:
        user = in_transaction(
            create_user,
            email=email,
            display_name=email.split("@", maxsplit=1)[0],
            password="pw-long-enough-1",
            role=role,
            email_verified=True,
        )
        issued = in_transaction(start_browser_session, user=user, client=ClientInfo())
        return user, issued.token, issued.record

    return {
        "victim": person("victim@example.com", Role.VIEWER),
        "customer": person("customer@example.com", Role.CUSTOMER),
        "viewer": person("viewer@example.com", Role.VIEWER),
        "admin": person("admin@example.com", Role.ADMIN),
    }


def callers(people: dict) -> dict[str, dict[type, str | None]]:
    """Who calls each protected state, and why they must be refused."""
    anonymous = dict.fromkeys(SHOWN, None)
    customer = {
        AdminUsersState: people["customer"][1],
        AuditLogState: people["customer"][1],
        AdminJobsState: people["customer"][1],
        AdminSellersState: people["customer"][1],
        OrganizerState: people["customer"][1],
        PaymentsDashboardState: people["customer"][1],
    }
    return {"anonymous": anonymous, "wrong_role": customer}


@pytest.mark.parametrize("caller", ["anonymous", "wrong_role"])
def test_protected_handlers_refuse_and_change_nothing(people, caller):
    victim, _token, victim_session = people["victim"]
    calls = protected_calls(victim, victim_session, victim_job_id=str(mail_job_that_gave_up().id))
    before = snapshot()
    for state_class, token in callers(people)[caller].items():
        for name, args in calls[state_class].items():
            state = make_state(state_class, session_token=token)
            asyncio.run(run_handler(state, name, *args))
            for var in SHOWN[state_class]:
                assert not getattr(state, var), f"{state_class.__name__}.{name} showed {var} to {caller}"
    assert snapshot() == before


def test_viewer_reads_users_but_every_change_is_refused(people):
    victim, _token, victim_session = people["victim"]
    before = snapshot()
    for name, args in protected_calls(victim, victim_session)[AdminUsersState].items():
        state = make_state(AdminUsersState, session_token=people["viewer"][1])
        asyncio.run(run_handler(state, name, *args))
        if name in ("change_role", "disable_user", "enable_user", "reset_two_factor", "submit_new_user"):
            assert state.error, f"{name} gave the viewer no refusal"
    assert snapshot() == before
    state = make_state(AdminUsersState, session_token=people["viewer"][1])
    asyncio.run(run_handler(state, "load_users"))
    assert any(row["email"] == "victim@example.com" for row in state.rows)


def test_viewer_sees_jobs_that_gave_up_but_cannot_run_them_again(people):
    job = mail_job_that_gave_up()
    state = make_state(AdminJobsState, session_token=people["viewer"][1])
    asyncio.run(run_handler(state, "load_jobs"))
    assert [(row["id"], row["state"]) for row in state.rows] == [(str(job.id), "gave up")]
    before = snapshot()
    asyncio.run(run_handler(state, "retry", str(job.id)))
    assert "Only admins" in state.error
    assert snapshot() == before


def test_admin_creates_a_user_with_a_role_but_never_a_role_above_their_own(people):
    admin_token = people["admin"][1]
    state = make_state(AdminUsersState, session_token=admin_token)
    asyncio.run(run_handler(state, "load_users"))
    asyncio.run(run_handler(state, "submit_new_user", {"name": "Eve", "email": "eve@example.com", "role": "admin"}))
    assert "super admin" in state.error
    asyncio.run(run_handler(state, "submit_new_user", {"name": "Kay", "email": "kay@example.com", "role": "viewer"}))
    assert state.error == ""
    assert "kay@example.com" in state.notice
    assert [row["role"] for row in state.rows if row["email"] == "kay@example.com"] == ["viewer"]
    asyncio.run(run_handler(state, "submit_new_user", {"name": "Kay", "email": "kay@example.com", "role": "viewer"}))
    assert state.error == "An account with that email already exists."


def test_admin_cannot_grant_super_admin_or_change_self(people):
    victim, _token, _ = people["victim"]
    admin, admin_token, _ = people["admin"]
    before = snapshot()
    state = make_state(AdminUsersState, session_token=admin_token)
    asyncio.run(run_handler(state, "change_role", str(victim.id), "super_admin"))
    assert "super admin" in state.error
    asyncio.run(run_handler(state, "disable_user", str(admin.id)))
    assert state.error
    asyncio.run(run_handler(state, "change_role", "not-a-uuid", "customer"))
    assert state.error
    assert snapshot() == before


def test_account_handlers_cannot_touch_another_users_session(people):
    _victim, _token, victim_session = people["victim"]
    before = snapshot()
    state = make_state(AccountState, session_token=people["customer"][1])
    asyncio.run(run_handler(state, "load_account"))
    asyncio.run(run_handler(state, "sign_out_device", str(victim_session.id)))
    assert state.error == "That session does not exist."
    assert all(row["id"] != str(victim_session.id) for row in state.sessions)
    assert snapshot() == before


def test_revoked_session_cookie_is_refused_by_every_account_handler(people):
    victim, token, victim_session = people["customer"]
    state = make_state(AccountState, session_token=token)
    asyncio.run(run_handler(state, "sign_out_all_devices"))
    before = snapshot()
    for name, args in protected_calls(victim, victim_session)[AccountState].items():
        stale = make_state(AccountState, session_token=token)
        asyncio.run(run_handler(stale, name, *args))
        assert not stale.email
        assert not stale.sessions
    assert snapshot() == before


def test_wallet_handlers_cannot_see_or_verify_another_users_payment(people):
    victim, _token, _session = people["victim"]
    payment = in_transaction(
        create_payment,
        actor=victim,
        purpose=PaymentPurpose.WALLET_TOPUP,
        amount_minor=5_000,
        currency="NGN",
        provider="mock",
        idempotency_key="victim-key-1",
    )
    before = snapshot()
    state = make_state(WalletState, session_token=people["customer"][1])
    asyncio.run(run_handler(state, "load_wallet"))
    asyncio.run(run_handler(state, "verify", str(payment.id)))
    assert state.notice == "That payment does not exist."
    assert all(row["reference"] != payment.reference for row in state.payments)
    assert snapshot() == before


def test_iou_handlers_cannot_touch_another_users_iou(people):
    victim, _token, _session = people["victim"]
    admin = people["admin"][0]
    request = in_transaction(send_friend_request, actor=victim, user_id=admin.id)
    in_transaction(accept_friend_request, actor=admin, request_id=request.id)
    iou = in_transaction(
        open_iou, actor=victim, lender_id=admin.id, amount_minor=500, currency="NGN", method="cash", idempotency_key="k"
    )
    before = snapshot()
    state = make_state(IousState, session_token=people["customer"][1])
    asyncio.run(run_handler(state, "load_ious"))
    for name in ("pay", "claim_cash", "confirm_cash", "dispute_cash", "acknowledge", "cancel"):
        asyncio.run(run_handler(state, name, str(iou.id)))
        assert state.error == "That IOU does not exist.", name
    asyncio.run(run_handler(state, "submit_iou", {"lender_id": str(victim.id), "amount": "5", "currency": "NGN"}))
    assert "friend" in state.error
    assert state.ious == []
    assert snapshot() == before


def test_transfer_to_a_non_friend_is_refused_in_words(people):
    victim, _token, _session = people["victim"]
    before = snapshot()
    state = make_state(TransfersState, session_token=people["customer"][1])
    asyncio.run(run_handler(state, "load_transfer_form"))
    asyncio.run(run_handler(state, "submit_transfer", {"to_user_id": str(victim.id), "amount": "5", "currency": "NGN"}))
    assert state.error == "You can only do that with a friend. Send them a friend request first."
    assert snapshot() == before


def test_viewer_reads_payments_dashboard_but_every_change_is_refused(people):
    victim, _token, _session = people["victim"]
    payment = in_transaction(
        create_payment,
        actor=victim,
        purpose=PaymentPurpose.WALLET_TOPUP,
        amount_minor=5_000,
        currency="NGN",
        provider="mock",
        idempotency_key="victim-key-2",
    )
    before = snapshot()
    state = make_state(PaymentsDashboardState, session_token=people["viewer"][1])
    asyncio.run(run_handler(state, "load_dashboard"))
    assert [row["reference"] for row in state.rows] == [payment.reference]
    asyncio.run(run_handler(state, "open_payment", str(payment.id)))
    assert state.detail["reference"] == payment.reference
    assert not state.can_change
    for name, args in (
        ("submit_refund", ({"amount": "50", "reason": "x"},)),
        ("submit_note", ({"note": "x"},)),
        ("send_to_reconciliation", ()),
    ):
        state.action_error = ""
        asyncio.run(run_handler(state, name, *args))
        assert state.action_error, f"{name} gave the viewer no refusal"
    assert snapshot() == before


def test_customer_cannot_open_a_payment_in_the_dashboard(people):
    victim, _token, _session = people["victim"]
    payment = in_transaction(
        create_payment,
        actor=victim,
        purpose=PaymentPurpose.WALLET_TOPUP,
        amount_minor=5_000,
        currency="NGN",
        provider="mock",
        idempotency_key="victim-key-3",
    )
    state = make_state(PaymentsDashboardState, session_token=people["customer"][1])
    asyncio.run(run_handler(state, "open_payment", str(payment.id)))
    assert not state.detail
    assert not state.drawer_open
