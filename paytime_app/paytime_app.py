"""Build the PayTime app: pages, API routes, middleware and background workers."""

from __future__ import annotations

import logging

import reflex as rx
from reflex.event import EventSpec

from paytime_app import live, routes
from paytime_app.api import create_api
from paytime_app.lifespan import database_check, job_worker, steady_heap
from paytime_app.live import run_live_updates
from paytime_app.pages.account import account_page
from paytime_app.pages.accounts import (
    forgot_password_page,
    reset_password_page,
    sign_in_page,
    sign_up_page,
    verify_email_page,
)
from paytime_app.pages.admin import admin_jobs_page, admin_users_page, audit_log_page
from paytime_app.pages.calls import calls_page
from paytime_app.pages.checkout import mock_checkout_page
from paytime_app.pages.errors import forbidden_page, not_found_page, server_error_page
from paytime_app.pages.events import booking_page, event_detail_page, events_page, tickets_page
from paytime_app.pages.friends import friends_page
from paytime_app.pages.ious import ious_page
from paytime_app.pages.landing import landing_page
from paytime_app.pages.mailbox import mailbox_page
from paytime_app.pages.organizer import admin_sellers_page, organizer_event_page, organizer_page, sell_page
from paytime_app.pages.payments_admin import payments_admin_page
from paytime_app.pages.wallet import wallet_page
from paytime_app.services.bookings import TOPIC as BOOKING_TOPIC
from paytime_app.services.events import SEATS_TOPIC
from paytime_app.services.notifications import TOPIC as NOTIFICATION_TOPIC
from paytime_app.services.payments import STAFF_TOPIC
from paytime_app.services.sellers import TOPIC as SELLER_TOPIC
from paytime_app.services.sessions import STAFF_SIGNED_IN
from paytime_app.settings import get_settings
from paytime_app.state.account import AccountState
from paytime_app.state.accounts import PasswordResetState, SignInState, SignUpState, VerifyEmailState
from paytime_app.state.admin import AdminJobsState, AdminUsersState, AuditLogState
from paytime_app.state.auth import AuthState
from paytime_app.state.calls import CallsState
from paytime_app.state.checkout import MockCheckoutState
from paytime_app.state.events import BookingState, EventsState, EventState, TicketsState, seats_delta
from paytime_app.state.friends import FriendsState
from paytime_app.state.ious import IousState
from paytime_app.state.mailbox import MailboxState
from paytime_app.state.middleware import EventCorrelationMiddleware
from paytime_app.state.notifications import notification_centre_pushes
from paytime_app.state.organizer import AdminSellersState, OrganizerEventState, OrganizerState, SellState
from paytime_app.state.payments_admin import PaymentsDashboardState
from paytime_app.state.wallet import WalletState

logger = logging.getLogger("paytime.events")


def report_backend_error(exception: Exception) -> EventSpec:
    """Log the failure with the event's correlation id; show the person words, not a traceback."""
    logger.error("event handler failed", exc_info=exception)
    return rx.toast.error("Something went wrong on our side. Please try again.", close_button=True)


app = rx.App(api_transformer=[create_api()], backend_exception_handler=report_backend_error)
app.api_transformer.append(live.sockets_first(app))
app.add_middleware(EventCorrelationMiddleware())
live.use_room_emit_manager(app)
app.register_lifespan_task(database_check)
app.register_lifespan_task(run_live_updates)
if get_settings().jobs_in_app:
    app.register_lifespan_task(job_worker)
app.register_lifespan_task(steady_heap)  # last: after the other tasks' start-up work

app.add_page(landing_page, route=routes.HOME, title="PayTime", on_load=AuthState.load_viewer)
app.add_page(sign_in_page, route=routes.SIGN_IN, title="Sign in · PayTime", on_load=SignInState.load_sign_in)
app.add_page(sign_up_page, route=routes.SIGN_UP, title="Create account · PayTime", on_load=SignUpState.load_sign_up)
app.add_page(
    verify_email_page,
    route=routes.VERIFY_EMAIL,
    title="Confirm email · PayTime",
    on_load=VerifyEmailState.load_verification,
)
app.add_page(
    forgot_password_page,
    route=routes.FORGOT_PASSWORD,
    title="Reset password · PayTime",
    on_load=PasswordResetState.load_forgot_password,
)
app.add_page(
    reset_password_page,
    route=routes.RESET_PASSWORD,
    title="New password · PayTime",
    on_load=PasswordResetState.load_reset_password,
)
app.add_page(account_page, route=routes.ACCOUNT, title="Account · PayTime", on_load=AccountState.load_account)
app.add_page(admin_users_page, route=routes.ADMIN_USERS, title="Users · PayTime", on_load=AdminUsersState.load_users)
app.add_page(
    audit_log_page, route=routes.ADMIN_AUDIT, title="Audit log · PayTime", on_load=AuditLogState.load_audit_log
)
app.add_page(
    admin_jobs_page, route=routes.ADMIN_JOBS, title="Background jobs · PayTime", on_load=AdminJobsState.load_jobs
)
app.add_page(wallet_page, route=routes.WALLET, title="Wallet · PayTime", on_load=WalletState.load_wallet)
app.add_page(
    mock_checkout_page,
    route=routes.MOCK_CHECKOUT,
    title="Test payment · PayTime",
    on_load=MockCheckoutState.load_checkout,
)
live.refresh_on("payment.updated", WalletState.refresh)
app.add_page(calls_page, route=routes.CALLS, title="Calls · PayTime", on_load=CallsState.load_calls)
live.refresh_on("call.updated", CallsState.refresh)
live.refresh_on("wallet.updated", WalletState.refresh)
app.add_page(friends_page, route=routes.FRIENDS, title="Friends · PayTime", on_load=FriendsState.load_friends)
live.refresh_on("friend.updated", FriendsState.refresh)
app.add_page(ious_page, route=routes.IOUS, title="IOUs · PayTime", on_load=IousState.load_ious)
live.refresh_on("iou.updated", IousState.refresh)
live.push_to_user_on(NOTIFICATION_TOPIC, notification_centre_pushes)
app.add_page(events_page, route=routes.EVENTS, title="Events · PayTime", on_load=EventsState.load_events)
app.add_page(event_detail_page, route=routes.EVENT_DETAIL, title="Event · PayTime", on_load=EventState.load_event)
live.broadcast_on(SEATS_TOPIC, key_field="event_id", build_delta=seats_delta)
app.add_page(booking_page, route=routes.BOOKING_DETAIL, title="Booking · PayTime", on_load=BookingState.load_booking)
live.refresh_on(BOOKING_TOPIC, BookingState.refresh)
live.refresh_on(BOOKING_TOPIC, TicketsState.refresh)
app.add_page(tickets_page, route=routes.TICKETS, title="My tickets · PayTime", on_load=TicketsState.load_tickets)
app.add_page(sell_page, route=routes.SELL, title="Sell tickets · PayTime", on_load=SellState.load_sell)
live.refresh_on(SELLER_TOPIC, SellState.refresh)
app.add_page(organizer_page, route=routes.ORGANIZER, title="Organizer · PayTime", on_load=OrganizerState.load_organizer)
app.add_page(
    organizer_event_page,
    route=routes.ORGANIZER_EVENT,
    title="Manage event · PayTime",
    on_load=OrganizerEventState.load_event,
)
app.add_page(
    admin_sellers_page,
    route=routes.ADMIN_SELLERS,
    title="Seller applications · PayTime",
    on_load=AdminSellersState.load_applications,
)
app.add_page(
    payments_admin_page,
    route=routes.ADMIN_PAYMENTS,
    title="Payments · PayTime",
    on_load=PaymentsDashboardState.load_dashboard,
)
for topic in (STAFF_TOPIC, STAFF_SIGNED_IN, "sessions.ended"):
    live.refresh_staff_on(topic, PaymentsDashboardState.refresh)
app.add_page(mailbox_page, route=routes.DEV_MAILBOX, title="Dev mailbox · PayTime", on_load=MailboxState.load_messages)
app.add_page(forbidden_page, route=routes.FORBIDDEN, title="No access · PayTime", on_load=AuthState.load_viewer)
app.add_page(server_error_page, route=routes.SERVER_ERROR, title="Error · PayTime", on_load=AuthState.load_viewer)
app.add_page(not_found_page, route="404", title="Page not found · PayTime", on_load=AuthState.load_viewer)
