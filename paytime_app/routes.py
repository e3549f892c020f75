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
API_SESSION = "/api/auth/session"
API_SIGNED_OUT = "/api/auth/signed-out"

API_OAUTH = "/api/auth/oauth/"  # + provider + "/start?intent=…" or "/callback"


FORBIDDEN = "/forbidden"
SERVER_ERROR = "/error"


@dataclass(frozen=True)
class NavLink:
    label: str
    href: str
    icon: str


# Only pages that exist are linked; each feature adds its own entry when it lands.
_SIGNED_IN_LINKS = (
    NavLink("Wallet", WALLET, "wallet"),
    NavLink("Friends", FRIENDS, "users-round"),
    NavLink("IOUs", IOUS, "handshake"),
    NavLink("Calls", CALLS, "phone"),
    NavLink("Account", ACCOUNT, "user-round"),
)
_ROLE_LINKS: dict[Role, tuple[NavLink, ...]] = {
    Role.VIEWER: (NavLink("Users", ADMIN_USERS, "users"), NavLink("Audit log", ADMIN_AUDIT, "scroll-text")),
    Role.ADMIN: (NavLink("Users", ADMIN_USERS, "users"), NavLink("Audit log", ADMIN_AUDIT, "scroll-text")),
    Role.SUPER_ADMIN: (NavLink("Users", ADMIN_USERS, "users"), NavLink("Audit log", ADMIN_AUDIT, "scroll-text")),
}


def navigation_for(role: Role | None) -> list[NavLink]:
    """Links in the top bar: personal pages when signed in, staff pages for staff roles."""
    if role is None:
        return []
    return [*_SIGNED_IN_LINKS, *_ROLE_LINKS.get(role, ())]
