"""The notification centre in the top bar: unread badge, newest notifications, toasts for new ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import reflex as rx

from paytime_app import routes
from paytime_app.errors import AuthenticationRequired
from paytime_app.models.notifications import Notification
from paytime_app.services.notifications import describe_notification, mark_all_read, read_notification_centre
from paytime_app.state.auth import AuthState

MAX_TOASTS = 3
_LINKS = {"friend": routes.FRIENDS, "transfer": routes.WALLET, "iou": routes.IOUS}


def _when(notification: Notification) -> str:
    return notification.created_at.strftime("%d %b, %H:%M")


class NotificationsState(AuthState):
    notifications: list[dict[str, str]] = []
    unread: int = 0
    _newest_seen: str = ""  # created_at (ISO) of the newest notification this tab has shown
    _loaded: bool = False

    @rx.var
    def unread_label(self) -> str:
        return "9+" if self.unread > 9 else str(self.unread)  # one digit fits the badge

    async def _read(self) -> list[Notification]:
        # One transaction (one session check) per push: with many tabs, each costs a database round trip.
        found, self.unread = await self._call_as_viewer(read_notification_centre, limit=15)
        self.notifications = [
            {
                "id": str(notification.id),
                "text": describe_notification(notification),
                "when": _when(notification),
                "unread": "" if notification.read_at else "yes",
                "href": _LINKS.get(notification.kind.split(".", 1)[0], routes.HOME),
            }
            for notification in found
        ]
        return found

    @rx.event
    async def load_notifications(self) -> None:
        """When the top bar mounts: the badge and list, without toasts for what is already there."""
        if not self.user_id:
            await self._load_viewer()
        if not self.is_signed_in:
            return
        try:
            found = await self._read()
        except AuthenticationRequired:
            return
        self._loaded = True
        if found:
            self._newest_seen = max(self._newest_seen, found[0].created_at.isoformat())

    @rx.event
    async def refresh_notifications(self) -> AsyncIterator[rx.event.EventSpec | None]:
        """Pushed by the server when something happened to the viewer: re-read, toast what is new."""
        if not self._loaded:
            return
        try:
            found = await self._read()
        except AuthenticationRequired:
            return
        fresh = [n for n in found if n.read_at is None and n.created_at.isoformat() > self._newest_seen]
        if found:
            self._newest_seen = max(self._newest_seen, found[0].created_at.isoformat())
        for notification in reversed(fresh[:MAX_TOASTS]):
            yield rx.toast.info(describe_notification(notification), duration=6000, close_button=True)

    @rx.event
    async def read_all(self) -> None:
        try:
            await self._call_as_viewer(mark_all_read)
            await self._read()
        except AuthenticationRequired:
            return
