"""Every page route as a constant or builder, and the navigation each role sees."""

from __future__ import annotations

from dataclasses import dataclass

from paytime_app.models.users import Role

HOME = "/"
EVENTS = "/events"
SIGN_IN = "/sign-in"
SIGN_UP = "/sign-up"
WALLET = "/wallet"
FRIENDS = "/friends"
TICKETS = "/tickets"
CALLS = "/calls"
ORGANIZER = "/organizer"
CHECK_IN = "/check-in"
ADMIN_PAYMENTS = "/admin/payments"
ADMIN_USERS = "/admin/users"
DEV_MAILBOX = "/dev/mailbox"
FORBIDDEN = "/forbidden"
SERVER_ERROR = "/error"


@dataclass(frozen=True)
class NavLink:
    label: str
    href: str
    icon: str


_CUSTOMER_LINKS = (
    NavLink("Wallet", WALLET, "wallet"),
    NavLink("Friends", FRIENDS, "users"),
    NavLink("My tickets", TICKETS, "ticket"),
    NavLink("Calls", CALLS, "phone"),
)
_EXTRA_LINKS: dict[Role, tuple[NavLink, ...]] = {
    Role.SELLER: (NavLink("Organizer", ORGANIZER, "calendar-plus"),),
    Role.MANAGER: (NavLink("Check-in", CHECK_IN, "scan-line"),),
    Role.VIEWER: (NavLink("Payments", ADMIN_PAYMENTS, "chart-column"),),
    Role.ADMIN: (NavLink("Payments", ADMIN_PAYMENTS, "chart-column"), NavLink("Users", ADMIN_USERS, "shield")),
    Role.SUPER_ADMIN: (NavLink("Payments", ADMIN_PAYMENTS, "chart-column"), NavLink("Users", ADMIN_USERS, "shield")),
}


def navigation_for(role: Role | None) -> list[NavLink]:
    """Links in the top bar: events for everyone, personal pages when signed in, role pages on top."""
    links = [NavLink("Events", EVENTS, "calendar")]
    if role is None:
        return links
    return [*links, *_CUSTOMER_LINKS, *_EXTRA_LINKS.get(role, ())]
