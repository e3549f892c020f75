"""Pushing to open tabs: which tab belongs to which session and user, and acting on bus messages.

Each worker knows only the tabs connected to it; bus messages reach every worker (through Redis
when configured), and each acts on its own tabs. A tab is forgotten when its session ends.

Three ways to push:
- Per user (`refresh_on`): the user's own tabs run a handler that re-reads their data.
- Per topic room (`broadcast_on` + `join_room`): for hot public topics (seats left on an event,
  a dashboard), every tab viewing `topic:key` sits in a socket.io room on its worker. When a bus
  message about that key arrives, each worker builds the state delta ONCE (one database read) and
  emits it to the room in one call, at most once per BROADCAST_INTERVAL per room and only when the
  delta changed (DESIGN.md section 2: rx.SharedState and per-token modify_state do not scale). The
  delta is display-only; pages re-read from the database on load.
- Per user room (`push_to_user_on`): the same mechanism for bursts of personal events. A signed-in
  tab joins `user:{user_id}` (`join_user_room`, with the user id from its server-side session, never
  from the client) and leaves it when that session ends. A message for a user makes each worker with
  a tab of that user build the user's delta once and emit it, with client-side events (a toast), in
  one call to the room: no per-tab round trip, no per-tab session check.

Builds are batched per topic: the rooms that are due while a build runs are built together next
(one database round trip for a burst of messages to many users), then each room gets its own emit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import reflex as rx
from reflex.state import StateUpdate
from reflex_base.constants import SocketEvent
from reflex_base.event import Event

from paytime_app import bus, routes

logger = logging.getLogger("paytime.live")

_tabs_by_session: defaultdict[str, set[str]] = defaultdict(set)
_tabs_by_user: defaultdict[str, set[str]] = defaultdict(set)
# session id -> (socket id, user id) of its tabs, to take them out of their user room when it ends.
_sockets_by_session: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
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


def watch_tab(*, client_token: str, session_id: str, user_id: str, sid: str = "") -> None:
    if client_token:
        _tabs_by_session[session_id].add(client_token)
        _tabs_by_user[user_id].add(client_token)
    if sid:
        _sockets_by_session[session_id].add((sid, user_id))


async def _send(app: rx.App, client_token: str, events: list[Any]) -> None:
    namespace = app.event_namespace
    if namespace is None:
        return
    await namespace.emit_update(StateUpdate(events=Event.from_event_type(events)), client_token)


# --- rooms: topic rooms and user rooms -------------------------------------------------------------

BROADCAST_INTERVAL = 0.25  # seconds between two emits to one room, at most
SENDER_IDLE_SECONDS = 300  # a room's throttle record is forgotten after this long without a message
DeltaBuilder = Callable[[str], dict[str, dict[str, Any]] | None]


@dataclass(frozen=True)
class Push:
    """One room emit: a ready-made state delta, and client-side events (a toast) that ride along."""

    delta: dict[str, dict[str, Any]]
    events: list[Any] = field(default_factory=list)


# Build what rooms get: room key -> the messages coalesced into its send, to room key -> its Push
# (a key left out sends nothing). One call builds every room due at that moment.
PushBuilder = Callable[[dict[str, list[bus.Message]]], dict[str, Push]]


@dataclass(frozen=True)
class _Broadcaster:
    key_field: str  # the message field naming the room's key
    room: Callable[[str], str]
    build: PushBuilder


@dataclass
class _BuildQueue:
    waiting: list[tuple[str, list[bus.Message], asyncio.Future]] = field(default_factory=list)
    running: bool = False
    task: asyncio.Task | None = None  # held so it is not garbage-collected while it runs


_broadcasters: dict[str, _Broadcaster] = {}
_queues: dict[str, _BuildQueue] = {}
_app: rx.App | None = None


@dataclass
class _RoomSender:
    last_sent: float = 0.0
    pending: bool = False
    last_delta: dict[str, Any] | None = None
    messages: list[bus.Message] = field(default_factory=list)


_senders: dict[tuple[str, str], _RoomSender] = {}
_last_pruned = 0.0


def room_name(topic: str, key: str) -> str:
    return f"topic:{topic}:{key}"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def broadcast_on(topic: str, *, key_field: str, build_delta: DeltaBuilder) -> None:
    """When `topic` arrives, send `build_delta(message[key_field])` to the room of that key on every worker.

    `build_delta` runs in a thread (it may read the database) once per worker per send.
    """

    def build(due: dict[str, list[bus.Message]]) -> dict[str, Push]:
        deltas = {key: build_delta(key) for key in due}
        return {key: Push(delta) for key, delta in deltas.items() if delta is not None}

    _broadcasters[topic] = _Broadcaster(key_field, lambda key: room_name(topic, key), build)


def push_to_user_on(topic: str, build: PushBuilder) -> None:
    """When `topic` arrives for a user, send what `build` makes for them to the user's room on every worker.

    `build({user_id: messages})` runs in a thread on workers where those users have a tab, for every
    user due at once; `messages` are the ones coalesced into that user's send (within BROADCAST_INTERVAL).
    """
    _broadcasters[topic] = _Broadcaster("user_id", user_room, build)


def _namespace() -> Any:
    return _app.event_namespace if _app is not None else None


async def join_room(*, topic: str, key: str, sid: str, leave: str = "") -> str:
    """Put the tab with socket id `sid` in the room of `topic:key` (leaving `leave`); returns the room."""
    room = room_name(topic, key)
    namespace = _namespace()
    if namespace is None or not sid:
        return room
    if leave and leave != room:
        await namespace.leave_room(sid, leave)
    await namespace.enter_room(sid, room)
    return room


async def join_user_room(*, user_id: str, sid: str) -> None:
    """Put the tab with socket id `sid` in its user's room. `user_id` must come from the tab's session."""
    namespace = _namespace()
    if namespace is not None and sid and user_id:
        await namespace.enter_room(sid, user_room(user_id))


async def leave_user_room(*, user_id: str, sid: str) -> None:
    namespace = _namespace()
    if namespace is not None and sid and user_id:
        await namespace.leave_room(sid, user_room(user_id))


def _has_members(namespace: Any, room: str) -> bool:
    """Whether a tab on this worker is in `room` (socket.io forgets disconnected sockets itself)."""
    manager = getattr(getattr(namespace, "server", None), "manager", None)
    if manager is None:
        return True  # cannot tell: send
    return next(iter(manager.get_participants(namespace.namespace, room)), None) is not None


def _prune_senders(now: float) -> None:
    global _last_pruned
    if now - _last_pruned < SENDER_IDLE_SECONDS:
        return
    _last_pruned = now
    for name, sender in list(_senders.items()):
        if not sender.pending and now - sender.last_sent > SENDER_IDLE_SECONDS:
            del _senders[name]


async def _build(topic: str, key: str, messages: list[bus.Message]) -> Push | None:
    """What `key`'s room gets, built together with every other room of `topic` due meanwhile."""
    queue = _queues.setdefault(topic, _BuildQueue())
    future: asyncio.Future = asyncio.get_running_loop().create_future()
    queue.waiting.append((key, messages, future))
    if not queue.running:
        queue.running = True
        queue.task = asyncio.create_task(_run_builds(topic, queue))
    return await future


async def _run_builds(topic: str, queue: _BuildQueue) -> None:
    try:
        await asyncio.sleep(0)  # let the other messages of this burst that are already here join
        while queue.waiting:
            batch, queue.waiting = queue.waiting, []
            due: dict[str, list[bus.Message]] = defaultdict(list)
            for key, messages, _future in batch:
                due[key].extend(messages)
            try:
                pushes = await asyncio.to_thread(_broadcasters[topic].build, dict(due))
            except Exception as error:
                for _key, _messages, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for key, _messages, future in batch:
                if not future.done():
                    future.set_result(pushes.get(key))
    finally:
        queue.running = False


async def _broadcast(app: rx.App, topic: str, key: str, message: bus.Message) -> None:
    """Throttled, change-only emit of one ready-made delta to a room on this worker.

    Messages arriving while a send is due join it (it builds after the wait, so it carries the latest
    value); one arriving during a build starts the next send: the last value is never dropped.
    """
    broadcaster = _broadcasters[topic]
    room = broadcaster.room(key)
    _prune_senders(time.monotonic())
    sender = _senders.setdefault((topic, room), _RoomSender())
    sender.messages.append(message)
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
    messages, sender.messages = sender.messages, []
    namespace = app.event_namespace
    if namespace is None or not _has_members(namespace, room):
        return
    push = await _build(topic, key, messages)
    if push is None or (push.delta == sender.last_delta and not push.events):
        return
    sender.last_delta = push.delta
    update = StateUpdate(delta=push.delta, events=Event.from_event_type(push.events))
    await namespace.emit(str(SocketEvent.EVENT), update, to=room)


async def _on_message(app: rx.App, message: bus.Message) -> None:
    if str(message.get("topic")) in _staff_refreshers:
        task = asyncio.ensure_future(_broadcast_to_staff(app, str(message["topic"])))
        _staff_sends.add(task)
        task.add_done_callback(_staff_sends.discard)
    broadcaster = _broadcasters.get(str(message.get("topic")))
    if broadcaster is not None and message.get(broadcaster.key_field):
        await _broadcast(app, str(message["topic"]), str(message[broadcaster.key_field]), message)
        return
    handlers = _refreshers.get(str(message.get("topic")), [])
    if handlers and message.get("user_id"):
        for client_token in list(_tabs_by_user.get(str(message["user_id"]), set())):
            await _send(app, client_token, list(handlers))
        return
    if message.get("topic") == "sessions.ended":
        expired = rx.redirect(f"{routes.SIGN_IN}?notice=session_expired")
        for session_id in message.get("session_ids", []):
            namespace = app.event_namespace
            for sid, user_id in _sockets_by_session.pop(session_id, set()):
                if namespace is not None:
                    await namespace.leave_room(sid, user_room(user_id))
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
