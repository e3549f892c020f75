"""The notification centre in the top bar: unread badge, newest notifications, toasts for new ones.

Live: every signed-in tab sits in its user's room (AuthState._watch_live); when a notification is
stored (or read), each worker with a tab of that user builds the user's delta once
(`notification_centre_pushes`: two small queries for all the users due at once, whatever their
history) and emits it, with the toasts, in one call to the room: the unread count and a toast for
each new notification. The list itself is re-read when the centre opens, and while it is open the
tab also sits in its user's detail room, which gets the whole list with every push (that read costs
more, so only users with an open centre on this worker pay it). Deltas are display-only: the centre
re-reads from the database when the top bar mounts and when it opens.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from typing import Any

import reflex as rx
from reflex_base.constants.state import FIELD_MARKER
from reflex_base.event import Event

from paytime_app import bus, live, routes
from paytime_app.db import unit_of_work
from paytime_app.errors import AuthenticationRequired
from paytime_app.models.notifications import Notification
from paytime_app.services.notifications import (
    count_unread_by_recipient,
    describe_notification,
    get_notifications_by_id,
    mark_all_read,
    read_notification_centre,
    read_notification_centres,
)
from paytime_app.state.auth import AuthState

MAX_TOASTS = 3
LISTED = 15
_LINKS = {"friend": routes.FRIENDS, "transfer": routes.WALLET, "iou": routes.IOUS}


def _href(notification: Notification) -> str:
    if notification.kind.startswith("booking.") and notification.payload.get("booking_id"):
        return routes.booking_detail(str(notification.payload["booking_id"]))
    return _LINKS.get(notification.kind.split(".", 1)[0], routes.HOME)


def _when(notification: Notification) -> str:
    return notification.created_at.strftime("%d %b, %H:%M")


def _badge(unread: int) -> str:
    return "9+" if unread > 9 else str(unread)  # one digit fits the badge


def _rows(found: list[Notification]) -> list[dict[str, str]]:
    return [
        {
            "id": str(notification.id),
            "text": describe_notification(notification),
            "when": _when(notification),
            "unread": "" if notification.read_at else "yes",
            "href": _href(notification),
        }
        for notification in found
    ]


def toast_spec(text: str) -> rx.event.EventSpec:
    return rx.toast.info(text, duration=6000, close_button=True)


_TOAST_SLOT = "\u0000toast text\u0000"


@functools.cache
def _toast_template() -> tuple[Event, str]:
    [event] = Event.from_event_type([toast_spec(_TOAST_SLOT)])
    if str(event.payload["function"]).count(json.dumps(_TOAST_SLOT)) != 1:
        raise RuntimeError("Reflex changed how a toast is written")
    return event, str(event.payload["function"])


def pushed_toast(text: str) -> Event:
    """The same client-side event as `toast_spec(text)`, made by putting the text in a ready-made one:
    building it through Reflex's vars costs more than the rest of a push (tests/test_live.py checks
    that both agree)."""
    template, function = _toast_template()
    payload = {**template.payload, "function": function.replace(json.dumps(_TOAST_SLOT), json.dumps(text))}
    return dataclasses.replace(template, payload=payload)


def _values(**values: Any) -> dict[str, dict[str, Any]]:
    return {NotificationsState.get_full_name(): {name + FIELD_MARKER: value for name, value in values.items()}}


def _named_ids(messages: list[bus.Message]) -> list[uuid.UUID]:
    named = []
    for message in messages:
        try:
            named.append(uuid.UUID(str(message.get("notification_id"))))
        except ValueError:
            continue  # a message without one (notifications read)
    return named


def notification_centre_pushes(due: dict[str, list[bus.Message]], detailed: frozenset[str]) -> dict[str, live.Push]:
    """What each user's tabs get when their notifications change: the unread count, and a toast for
    each new unread notification named in their messages (at most MAX_TOASTS, oldest first); users
    in `detailed` (a centre open on this worker) also get the newest list for their open centres.
    Two queries for all the users due at once, and a third only for the detailed ones."""
    recipients: dict[uuid.UUID, str] = {}
    named: dict[uuid.UUID, str] = {}  # notification id -> the user whose message named it
    for user_id, messages in due.items():
        try:
            recipient = uuid.UUID(user_id)
        except ValueError:
            continue
        recipients[recipient] = user_id
        named.update(dict.fromkeys(_named_ids(messages), user_id))
    listing = [rid for rid, user_id in recipients.items() if user_id in detailed]
    with unit_of_work() as session:
        unread = count_unread_by_recipient(session=session, recipient_ids=list(recipients))
        fresh = get_notifications_by_id(session=session, notification_ids=list(named))
        centres = read_notification_centres(session=session, recipient_ids=listing, limit=LISTED) if listing else {}
    toasts: dict[str, list[Any]] = {}
    for notification in fresh:
        user_id = recipients.get(notification.recipient_id)
        # Only the user's own notification, named in their own message, and not read meanwhile.
        if user_id is not None and named.get(notification.id) == user_id and notification.read_at is None:
            toasts.setdefault(user_id, []).append(notification)
    pushes = {}
    for rid, user_id in recipients.items():
        count = unread[rid]
        events = [pushed_toast(describe_notification(n)) for n in toasts.get(user_id, [])[-MAX_TOASTS:]]
        detail = None
        if rid in centres:
            found, listed_unread = centres[rid]
            detail = _values(notifications=_rows(found), unread=listed_unread, unread_label=_badge(listed_unread))
        pushes[user_id] = live.Push(_values(unread=count, unread_label=_badge(count)), events, detail)
    return pushes


class NotificationsState(AuthState):
    # Replaced live for all the user's tabs by notification_centre_pushes (the list only while open).
    notifications: list[dict[str, str]] = []
    unread: int = 0

    @rx.var
    def unread_label(self) -> str:
        return _badge(self.unread)

    async def _read(self) -> list[Notification]:
        found, self.unread = await self._call_as_viewer(read_notification_centre, limit=LISTED)
        self.notifications = _rows(found)
        return found

    @rx.event
    async def load_notifications(self) -> None:
        """When the top bar mounts: the badge and list, without toasts for what is already there."""
        if not self.user_id:
            await self._load_viewer()
        if not self.is_signed_in:
            return
        try:
            await self._read()
        except AuthenticationRequired:
            return
        await self._watch_live()  # again: a reconnected tab has a new socket id

    @rx.event
    async def open_centre(self, is_open: bool) -> None:
        """The centre opened (re-read the list; keep it live while open) or closed."""
        if not self.is_signed_in:
            return
        sid = self.router.session.session_id
        if not is_open:
            await live.leave_user_detail_room(user_id=self.user_id, sid=sid)
            return
        try:
            await self._read()
        except AuthenticationRequired:
            return
        await live.join_user_detail_room(user_id=self.user_id, sid=sid)

    @rx.event
    async def read_all(self) -> None:
        try:
            await self._call_as_viewer(mark_all_read)
            await self._read()
        except AuthenticationRequired:
            return
