"""The friends page: your code, search, requests both ways, friends, blocked people; refreshed live."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import reflex as rx

from paytime_app.errors import AuthenticationRequired, DomainError
from paytime_app.services.friends import (
    accept_friend_request,
    block_user,
    cancel_friend_request,
    decline_friend_request,
    get_friend_code,
    list_blocked,
    list_friend_requests,
    list_friends,
    search_people,
    send_friend_request,
    unblock_user,
    unfriend,
)
from paytime_app.state.auth import AuthState, parse_id


class FriendsState(AuthState):
    friend_code: str = ""
    friends: list[dict[str, str]] = []
    incoming: list[dict[str, str]] = []
    outgoing: list[dict[str, str]] = []
    blocked: list[dict[str, str]] = []
    results: list[dict[str, str]] = []
    query: str = ""
    searched: bool = False
    error: str = ""
    notice: str = ""
    is_loading: bool = True
    _loaded: bool = False

    async def _refresh(self) -> None:
        self.friend_code = await self._call_as_viewer(get_friend_code)
        self.friends = [
            {"id": str(view.user_id), "name": view.display_name, "since": view.since.strftime("%d %b %Y")}
            for view in await self._call_as_viewer(list_friends)
        ]
        requests = await self._call_as_viewer(list_friend_requests)
        rows = [
            {"id": str(view.request_id), "name": view.display_name, "when": view.requested_at.strftime("%d %b, %H:%M")}
            for view in requests
        ]
        self.incoming = [row for row, view in zip(rows, requests, strict=True) if view.incoming]
        self.outgoing = [row for row, view in zip(rows, requests, strict=True) if not view.incoming]
        self.blocked = [
            {"id": str(view.user_id), "name": view.display_name} for view in await self._call_as_viewer(list_blocked)
        ]
        if self.query:
            # Relations change (request sent, accepted): re-read what is shown. Searches are
            # rate-limited; when refused, the results stay as they were.
            with contextlib.suppress(DomainError):
                await self._search()

    async def _search(self) -> None:
        matches = await self._call_as_viewer(search_people, query=self.query)
        self.results = [
            {
                "id": str(match.user_id),
                "name": match.display_name,
                "relation": match.relation,
                "request_id": str(match.request_id or ""),
            }
            for match in matches
        ]
        self.searched = True

    @rx.event
    async def load_friends(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error, self.notice = True, "", ""
        self.query, self.results, self.searched = "", [], False
        if (redirect := await self._open_page(self._refresh)) is not None:
            yield redirect
            return
        self._loaded, self.is_loading = True, False

    @rx.event
    async def refresh(self) -> None:
        """Pushed by the server when a request or friendship of the viewer's changes."""
        if not self._loaded:
            return
        try:
            await self._refresh()
        except (AuthenticationRequired, DomainError):
            return

    @rx.event
    async def search(self, form: dict[str, str]) -> None:
        self.error, self.notice = "", ""
        self.query = " ".join(str(form.get("q", "")).split())[:80]
        try:
            await self._search()
        except AuthenticationRequired:
            return
        except DomainError as error:
            self.results, self.searched, self.error = [], False, error.message

    async def _act(self, service: Callable[..., Any], success: str, **kwargs: Any) -> None:
        self.error, self.notice = "", ""
        try:
            await self._call_as_viewer(service, **kwargs)
        except AuthenticationRequired:
            return
        except DomainError as error:
            self.error = error.message
        else:
            self.notice = success
        try:
            await self._refresh()
        except (AuthenticationRequired, DomainError):
            return

    @rx.event
    async def send_request(self, user_id: str) -> None:
        if (target := parse_id(user_id)) is not None:
            await self._act(send_friend_request, "Friend request sent.", user_id=target)

    @rx.event
    async def accept(self, request_id: str) -> None:
        if (target := parse_id(request_id)) is not None:
            await self._act(accept_friend_request, "You are now friends.", request_id=target)

    @rx.event
    async def decline(self, request_id: str) -> None:
        if (target := parse_id(request_id)) is not None:
            await self._act(decline_friend_request, "Request declined.", request_id=target)

    @rx.event
    async def cancel_request(self, request_id: str) -> None:
        if (target := parse_id(request_id)) is not None:
            await self._act(cancel_friend_request, "Request cancelled.", request_id=target)

    @rx.event
    async def remove_friend(self, user_id: str) -> None:
        if (target := parse_id(user_id)) is not None:
            await self._act(unfriend, "Removed from your friends.", user_id=target)

    @rx.event
    async def block(self, user_id: str) -> None:
        if (target := parse_id(user_id)) is not None:
            await self._act(block_user, "Blocked. You won't see each other in search.", user_id=target)

    @rx.event
    async def unblock(self, user_id: str) -> None:
        if (target := parse_id(user_id)) is not None:
            await self._act(unblock_user, "Unblocked.", user_id=target)
