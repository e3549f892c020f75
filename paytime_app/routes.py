"""Every page route as a constant or builder, and the navigation each role sees."""

from __future__ import annotations

from dataclasses import dataclass

from paytime_app.models.users import Role

HOME = "/"
SIGN_IN = "/sign-in"
SIGN_UP = "/sign-up"
ADMIN_USERS = "/admin/users"
DEV_MAILBOX = "/dev/mailbox"
SIGN_UP_CHECK_EMAIL = "/sign-up/check-email"
VERIFY_EMAIL = "/verify-email"
FORGOT_PASSWORD = "/forgot-password"
RESET_PASSWORD = "/reset-password"
ACCOUNT = "/account"
WALLET = "/wallet"
CALLS = "/calls"
FRIENDS = "/friends"
IOUS = "/ious"
MOCK_CHECKOUT = "/pay/mock/[provider_reference]"
ADMIN_AUDIT = "/admin/audit"
ADMIN_PAYMENTS = "/admin/payments"
API_SESSION = "/api/auth/session"
API_SIGNED_OUT = "/api/auth/signed-out"

API_OAUTH = "/api/auth/oauth/"  # + provider + "/start?intent=…" or "/callback"
EVENTS = "/events"
EVENT_DETAIL = "/events/[event_id]"
BOOKING_DETAIL = "/bookings/[booking_id]"
TICKETS = "/tickets"
SELL = "/sell"
ORGANIZER = "/organizer"
ORGANIZER_EVENT = "/organizer/events/[event_id]"
ADMIN_SELLERS = "/admin/sellers"
ADMIN_JOBS = "/admin/jobs"


def event_detail(event_id: str) -> str:
    return f"/events/{event_id}"


def booking_detail(booking_id: str) -> str:
    return f"/bookings/{booking_id}"


def organizer_event(event_id: str) -> str:
    return f"/organizer/events/{event_id}"


def ticket_pdf(ticket_id: str) -> str:
    return f"/api/downloads/tickets/{ticket_id}.pdf"


def booking_pdf(booking_id: str) -> str:
    return f"/api/downloads/bookings/{booking_id}.pdf"


def event_bookings_csv(event_id: str) -> str:
    return f"/api/downloads/events/{event_id}/bookings.csv"


def mail_attachment(mail_id: str, index: int) -> str:
    return f"/api/downloads/mail/{mail_id}/attachments/{index}"


def event_cover(event_id: str, key: str | None, *, thumb: bool = False) -> str:
    """The served cover image ("" when the event has none); the key changes with every upload."""
    if not key:
        return ""
    return f"/api/media/events/{event_id}/{key}{'-thumb' if thumb else ''}.webp"


FORBIDDEN = "/forbidden"
SERVER_ERROR = "/error"


@dataclass(frozen=True)
class NavLink:
    label: str
    href: str
    icon: str


# Only pages that exist are linked; each feature adds its own entry when it lands.
_SIGNED_IN_LINKS = (
    NavLink("Events", EVENTS, "calendar"),
    NavLink("My tickets", TICKETS, "ticket"),
    NavLink("Wallet", WALLET, "wallet"),
    NavLink("Friends", FRIENDS, "users-round"),
    NavLink("IOUs", IOUS, "handshake"),
    NavLink("Calls", CALLS, "phone"),
    NavLink("Account", ACCOUNT, "user-round"),
)
_STAFF = (
    NavLink("Payments", ADMIN_PAYMENTS, "credit-card"),
    NavLink("Users", ADMIN_USERS, "users"),
    NavLink("Sellers", ADMIN_SELLERS, "badge-check"),
    NavLink("Audit log", ADMIN_AUDIT, "scroll-text"),
    NavLink("Background jobs", ADMIN_JOBS, "timer-reset"),
)
_ORGANIZER = NavLink("Organizer", ORGANIZER, "layout-dashboard")
_ROLE_LINKS: dict[Role, tuple[NavLink, ...]] = {
    Role.CUSTOMER: (NavLink("Sell tickets", SELL, "store"),),
    Role.SELLER: (_ORGANIZER,),
    Role.ADMIN: (_ORGANIZER,),
    Role.SUPER_ADMIN: (_ORGANIZER,),
}
_STAFF_ROLES = frozenset({Role.VIEWER, Role.ADMIN, Role.SUPER_ADMIN})


def navigation_for(role: Role | None) -> list[NavLink]:
    """Links in the top bar: personal pages when signed in, and the organizer's for those who sell."""
    if role is None:
        return []
    return [*_SIGNED_IN_LINKS, *_ROLE_LINKS.get(role, ())]


def staff_navigation_for(role: Role | None) -> list[NavLink]:
    """The staff pages, grouped under one "Admin" menu so the top bar stays readable."""
    return list(_STAFF) if role in _STAFF_ROLES else []
