"""The notification centre in the top bar: unread badge, newest notifications, toasts for new ones.

Live: every signed-in tab sits in its user's room (AuthState._watch_live); when a notification is
stored (or read), each worker with a tab of that user builds the centre's delta once
(`notification_centre_pushes`: one database read for all the users due at once) and emits it,
with the toasts, in one call to the room. The delta is display-only: the centre re-reads from the
database when the top bar mounts.
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
    describe_notification,
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


def _push(found: list[Notification], unread: int, messages: list[bus.Message]) -> live.Push:
    named = {str(message.get("notification_id")) for message in messages if message.get("notification_id")}
    fresh = [n for n in found if str(n.id) in named and n.read_at is None][:MAX_TOASTS]
    values: dict[str, Any] = {"notifications": _rows(found), "unread": unread, "unread_label": _badge(unread)}
    delta = {NotificationsState.get_full_name(): {name + FIELD_MARKER: value for name, value in values.items()}}
    return live.Push(delta=delta, events=[pushed_toast(describe_notification(n)) for n in reversed(fresh)])


def notification_centre_pushes(due: dict[str, list[bus.Message]]) -> dict[str, live.Push]:
    """What each user's tabs get when their notifications change: the centre's delta, and a toast for
    each new unread notification named in their messages (at most MAX_TOASTS, oldest first).
    One database read for all the users due at once."""
    recipients: dict[uuid.UUID, str] = {}
    for user_id in due:
        try:
            recipients[uuid.UUID(user_id)] = user_id
        except ValueError:
            continue
    with unit_of_work() as session:
        centres = read_notification_centres(session=session, recipient_ids=list(recipients), limit=LISTED)
        return {recipients[rid]: _push(found, unread, due[recipients[rid]]) for rid, (found, unread) in centres.items()}


class NotificationsState(AuthState):
    # Replaced live for all the user's tabs by notification_centre_pushes.
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
    async def read_all(self) -> None:
        try:
            await self._call_as_viewer(mark_all_read)
            await self._read()
        except AuthenticationRequired:
            return
