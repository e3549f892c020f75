"""Pushing to open tabs: which tab belongs to which session and user, and acting on bus messages.

Each worker knows only the tabs connected to it; bus messages reach every worker (through Redis
when configured), and each acts on its own tabs. A tab is forgotten when its session ends.

Two ways to push:
- Per user (`refresh_on`): the user's own tabs run a handler that re-reads their data.
- Per topic room (`broadcast_on` + `join_room`): for hot public topics (seats left on an event,
  a dashboard), every tab viewing `topic:key` sits in a socket.io room on its worker. When a bus
  message about that key arrives, each worker builds the state delta ONCE (one database read) and
  emits it to the room in one call, at most once per BROADCAST_INTERVAL per room and only when the
  delta changed (DESIGN.md section 2: rx.SharedState and per-token modify_state do not scale). The
  delta is display-only; pages re-read from the database on load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import reflex as rx
from reflex.state import StateUpdate
from reflex_base.constants import SocketEvent
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


# --- topic rooms ----------------------------------------------------------------------------------

BROADCAST_INTERVAL = 0.25  # seconds between two emits to one room, at most
# topic -> (the message field naming the room's key, build the delta for a key; None sends nothing)
DeltaBuilder = Callable[[str], dict[str, dict[str, Any]] | None]
_broadcasters: dict[str, tuple[str, DeltaBuilder]] = {}
_app: rx.App | None = None


@dataclass
class _RoomSender:
    last_sent: float = 0.0
    pending: bool = False
    last_delta: dict[str, Any] | None = None


_senders: dict[str, _RoomSender] = {}


def room_name(topic: str, key: str) -> str:
    return f"topic:{topic}:{key}"


def broadcast_on(topic: str, *, key_field: str, build_delta: DeltaBuilder) -> None:
    """When `topic` arrives, send `build_delta(message[key_field])` to the room of that key on every worker.

    `build_delta` runs in a thread (it may read the database) once per worker per send.
    """
    _broadcasters[topic] = (key_field, build_delta)


async def join_room(*, topic: str, key: str, sid: str, leave: str = "") -> str:
    """Put the tab with socket id `sid` in the room of `topic:key` (leaving `leave`); returns the room."""
    room = room_name(topic, key)
    namespace = _app.event_namespace if _app is not None else None
    if namespace is None or not sid:
        return room
    if leave and leave != room:
        await namespace.leave_room(sid, leave)
    await namespace.enter_room(sid, room)
    return room


async def _broadcast(app: rx.App, topic: str, key: str) -> None:
    """Throttled, change-only emit of one ready-made delta to a room on this worker."""
    room = room_name(topic, key)
    sender = _senders.setdefault(room, _RoomSender())
    if sender.pending:
        return  # a send is already due; it will read the latest value
    sender.pending = True
    try:
        wait = sender.last_sent + BROADCAST_INTERVAL - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
    finally:
        sender.pending = False
    sender.last_sent = time.monotonic()
    _key_field, build = _broadcasters[topic]
    delta = await asyncio.to_thread(build, key)
    if delta is None or delta == sender.last_delta:
        return
    sender.last_delta = delta
    namespace = app.event_namespace
    if namespace is not None:
        await namespace.emit(str(SocketEvent.EVENT), StateUpdate(delta=delta), to=room)


async def _on_message(app: rx.App, message: bus.Message) -> None:
    if str(message.get("topic")) in _staff_refreshers:
        task = asyncio.ensure_future(_broadcast_to_staff(app, str(message["topic"])))
        _staff_sends.add(task)
        task.add_done_callback(_staff_sends.discard)
    broadcaster = _broadcasters.get(str(message.get("topic")))
    if broadcaster is not None and message.get(broadcaster[0]):
        await _broadcast(app, str(message["topic"]), str(message[broadcaster[0]]))
        return
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

    global _app
    _app = app

    async def handle(message: bus.Message) -> None:
        try:
            await _on_message(app, message)
        except Exception:
            logger.exception("could not push a live update", extra={"topic": message.get("topic")})

    bus.subscribe(handle)
    await bus.relay_from_redis()
