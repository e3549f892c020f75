"""The base state: who is asking, re-derived from the HttpOnly session cookie on every call.

The cookie rides on the websocket's handshake headers; it is never readable by page scripts. A
handler that touches data calls `_call_as_viewer`, which re-checks the session in the same
transaction as the service, so a revoked session or a disabled account stops working at once.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

import reflex as rx

from paytime_app import live, routes
from paytime_app.cookies import DEVICE_COOKIE, SESSION_COOKIE, read_cookie
from paytime_app.db import in_transaction
from paytime_app.errors import AuthenticationRequired, PermissionDenied
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import Role
from paytime_app.routes import NavLink, navigation_for, staff_navigation_for
from paytime_app.services.sessions import ClientInfo, authenticate_token, call_as_user, end_session

T = TypeVar("T")


def _viewer(*, session: Any, token: str | None) -> tuple[str, str, str, str]:
    user, record = authenticate_token(session=session, token=token, kind=SessionKind.BROWSER)
    return str(user.id), user.display_name, user.role, str(record.id)


def _as_dicts(links: list[NavLink]) -> list[dict[str, str]]:
    return [{"label": link.label, "href": link.href, "icon": link.icon} for link in links]


class AuthState(rx.State):
    user_id: str = ""
    display_name: str = ""
    role: str = ""
    _session_id: str = ""

    @rx.var
    def is_signed_in(self) -> bool:
        return self.user_id != ""

    @rx.var
    def initials(self) -> str:
        return "".join(part[0] for part in self.display_name.split()[:2]).upper()

    @rx.var
    def role_label(self) -> str:
        return self.role.replace("_", " ").title()

    @rx.var
    def nav_links(self) -> list[dict[str, str]]:
        return _as_dicts(navigation_for(self._viewer_role()))

    @rx.var
    def staff_links(self) -> list[dict[str, str]]:
        return _as_dicts(staff_navigation_for(self._viewer_role()))

    def _viewer_role(self) -> Role | None:
        return Role(self.role) if self.role else None

    def _cookie(self, name: str) -> str | None:
        return read_cookie(self.router.headers.cookie, name)

    def _client(self) -> ClientInfo:
        return ClientInfo(
            ip_address=self.router.session.client_ip or None, user_agent=self.router.headers.user_agent or None
        )

    def _device_token(self) -> str | None:
        return self._cookie(DEVICE_COOKIE)

    def _sign_in_redirect(self) -> rx.event.EventSpec:
        return rx.redirect(f"{routes.SIGN_IN}?next={quote(self.router.url.path or '/')}")

    @staticmethod
    async def _call_service(service: Callable[..., T], /, **kwargs: Any) -> T:
        """Run one service call in its own transaction off the event loop (no signed-in user needed)."""
        return await asyncio.to_thread(functools.partial(in_transaction, service, **kwargs))

    @staticmethod
    async def _run(service: Callable[..., T], /, **kwargs: Any) -> T:
        """Run a service that opens its own transactions (it checks the session itself) off the event loop."""
        return await asyncio.to_thread(functools.partial(service, **kwargs))

    async def _call_as_viewer(self, service: Callable[..., T], /, *, actor_param: str = "actor", **kwargs: Any) -> T:
        """Run a service as the signed-in user; raises AuthenticationRequired if the session is gone."""
        token = self._cookie(SESSION_COOKIE)
        return await asyncio.to_thread(
            functools.partial(
                call_as_user, service, token=token, session_kind=SessionKind.BROWSER, actor_param=actor_param, **kwargs
            )
        )

    async def _open_page(self, refresh: Callable[[], Awaitable[None]]) -> rx.event.EventSpec | None:
        """The on_load body of a signed-in page: who is asking, then `refresh`; a sign-in redirect if nobody."""
        await self._load_viewer()
        if not self.is_signed_in:
            return self._sign_in_redirect()
        try:
            await refresh()
        except AuthenticationRequired:
            return self._sign_in_redirect()
        return None

    async def _refresh_staff_view(self, refresh: Callable[[], Awaitable[None]]) -> rx.event.EventSpec | None:
        """`refresh` for a staff page: a sign-in redirect if the session is gone, the forbidden page if the
        viewer is not staff (the services decide)."""
        try:
            await refresh()
        except AuthenticationRequired:
            return self._sign_in_redirect()
        except PermissionDenied:
            return rx.redirect(routes.FORBIDDEN)
        return None

    async def _forget_viewer(self) -> None:
        await live.leave_user_room(user_id=self.user_id, sid=self.router.session.session_id)
        self.user_id = self.display_name = self.role = self._session_id = ""

    async def _watch_live(self) -> None:
        """Register this tab for live pushes to its user: the user id comes from the session, never the client."""
        sid = self.router.session.session_id
        live.watch_tab(
            client_token=self.router.session.client_token, session_id=self._session_id, user_id=self.user_id, sid=sid
        )
        await live.join_user_room(user_id=self.user_id, sid=sid)

    @rx.event
    async def load_viewer(self) -> None:
        """On every page load: who is signed in (or nobody), and watch that session for sign-out."""
        await self._load_viewer()

    async def _load_viewer(self) -> None:
        token = self._cookie(SESSION_COOKIE)
        if not token:
            await self._forget_viewer()
            return
        try:
            viewer = await self._call_service(_viewer, token=token)
            self.user_id, self.display_name, self.role, self._session_id = viewer
        except AuthenticationRequired:
            await self._forget_viewer()
            return
        await self._watch_live()

    @rx.event
    async def require_viewer(self) -> rx.event.EventSpec | None:
        """on_load guard for signed-in pages: anonymous visitors go to sign-in and come back after."""
        await self._load_viewer()
        return None if self.is_signed_in else self._sign_in_redirect()

    @rx.event
    async def sign_out(self) -> rx.event.EventSpec:
        await self._call_service(end_session, token=self._cookie(SESSION_COOKIE))
        await self._forget_viewer()
        # The cookie is HttpOnly: only an API route can clear it, so this is a full page load.
        return rx.call_script(f"window.location.assign('{routes.API_SIGNED_OUT}')")


def parse_id(value: str) -> uuid.UUID | None:
    """An id a page sent back (anyone can send anything over the websocket), or None if it is not one."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
