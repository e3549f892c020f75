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
MOCK_CHECKOUT = "/pay/mock/[provider_reference]"
ADMIN_AUDIT = "/admin/audit"
ADMIN_PAYMENTS = "/admin/payments"
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
    NavLink("Calls", CALLS, "phone"),
    NavLink("Account", ACCOUNT, "user-round"),
)
_STAFF_LINKS = (
    NavLink("Payments", ADMIN_PAYMENTS, "credit-card"),
    NavLink("Users", ADMIN_USERS, "users"),
    NavLink("Audit log", ADMIN_AUDIT, "scroll-text"),
)
_ROLE_LINKS: dict[Role, tuple[NavLink, ...]] = {
    Role.VIEWER: _STAFF_LINKS,
    Role.ADMIN: _STAFF_LINKS,
    Role.SUPER_ADMIN: _STAFF_LINKS,
}


def navigation_for(role: Role | None) -> list[NavLink]:
    """Links in the top bar: personal pages when signed in, staff pages for staff roles."""
    if role is None:
        return []
    return [*_SIGNED_IN_LINKS, *_ROLE_LINKS.get(role, ())]
