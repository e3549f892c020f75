"""The cookies PayTime sets (all HttpOnly, set only by API routes) and reading them from a header."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

SESSION_COOKIE = "paytime_session"
DEVICE_COOKIE = "paytime_device"
OAUTH_COOKIE = "paytime_oauth"


def read_cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel and morsel.value else None


def safe_next_path(value: str | None, default: str = "/") -> str:
    """Only same-site paths: '/wallet' yes; '//evil.example', 'https://…' and '/\\evil' no."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or "\n" in value or "\r" in value:
        return default
    return value
