"""Pushing to open tabs: which tab belongs to which session and user, and acting on bus messages.

Each worker knows only the tabs connected to it; bus messages reach every worker (through Redis
when configured), and each acts on its own tabs. A tab is forgotten when its session ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import reflex as rx
from reflex.state import StateUpdate
from reflex_base.event import Event

from paytime_app import bus, routes

logger = logging.getLogger("paytime.live")

_tabs_by_session: defaultdict[str, set[str]] = defaultdict(set)
_tabs_by_user: defaultdict[str, set[str]] = defaultdict(set)
# topic -> the state event a user's open tabs run when a message about them arrives.
_refreshers: dict[str, list[Any]] = defaultdict(list)
# Staff dashboards: every open staff tab re-reads on these topics, at most once per throttle window.
_staff_tabs: set[str] = set()
_staff_refreshers: dict[str, list[Any]] = defaultdict(list)
_staff_pending: set[str] = set()
_staff_sends: set[asyncio.Task[None]] = set()
STAFF_THROTTLE_SECONDS = 0.25


def refresh_on(topic: str, handler: Any) -> None:
    """When `topic` arrives for a user, their open tabs run `handler` (it re-reads from the database)."""
    _refreshers[topic].append(handler)


def refresh_staff_on(topic: str, handler: Any) -> None:
    """When `topic` arrives (about nobody in particular), every open staff dashboard runs `handler`."""
    _staff_refreshers[topic].append(handler)


def watch_staff_tab(*, client_token: str) -> None:
    """A tab whose staff role the service has just confirmed; its handlers re-check on every read."""
    if client_token:
        _staff_tabs.add(client_token)


async def _broadcast_to_staff(app: rx.App, topic: str) -> None:
    # A burst of payments becomes one refresh per window: the refresh reads everything committed so far.
    if topic in _staff_pending:
        return
    _staff_pending.add(topic)
    try:
        await asyncio.sleep(STAFF_THROTTLE_SECONDS)
    finally:
        _staff_pending.discard(topic)
    for client_token in list(_staff_tabs):
        await _send(app, client_token, list(_staff_refreshers[topic]))


def watch_tab(*, client_token: str, session_id: str, user_id: str) -> None:
    if client_token:
        _tabs_by_session[session_id].add(client_token)
        _tabs_by_user[user_id].add(client_token)


async def _send(app: rx.App, client_token: str, events: list[Any]) -> None:
    namespace = app.event_namespace
    if namespace is None:
        return
    await namespace.emit_update(StateUpdate(events=Event.from_event_type(events)), client_token)


async def _on_message(app: rx.App, message: bus.Message) -> None:
    if str(message.get("topic")) in _staff_refreshers:
        task = asyncio.ensure_future(_broadcast_to_staff(app, str(message["topic"])))
        _staff_sends.add(task)
        task.add_done_callback(_staff_sends.discard)
    handlers = _refreshers.get(str(message.get("topic")), [])
    if handlers and message.get("user_id"):
        for client_token in list(_tabs_by_user.get(str(message["user_id"]), set())):
            await _send(app, client_token, list(handlers))
        return
    if message.get("topic") == "sessions.ended":
        expired = rx.redirect(f"{routes.SIGN_IN}?notice=session_expired")
        for session_id in message.get("session_ids", []):
            for client_token in _tabs_by_session.pop(session_id, set()):
                _staff_tabs.discard(client_token)
                for tabs in _tabs_by_user.values():
                    tabs.discard(client_token)
                await _send(app, client_token, [expired])


async def run_live_updates(app: rx.App) -> None:
    """Lifespan task: receive bus messages (via Redis when configured) and push them to tabs."""

    async def handle(message: bus.Message) -> None:
        try:
            await _on_message(app, message)
        except Exception:
            logger.exception("could not push a live update", extra={"topic": message.get("topic")})

    bus.subscribe(handle)
    await bus.relay_from_redis()
