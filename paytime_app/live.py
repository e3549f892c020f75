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
import socketio
from engineio import packet as engineio_packet
from reflex.state import StateUpdate
from reflex_base import constants
from reflex_base.config import get_config
from reflex_base.constants import SocketEvent
from reflex_base.event import Event
from starlette.routing import Mount

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
    """One room emit: a ready-made state delta, and client-side events (a toast) that ride along.

    `detail`, when set, goes to the key's detail room as well: the tabs there show more than the
    others (an open notification list) and cost more to build, so it is built only for keys whose
    detail room has a tab on this worker."""

    delta: dict[str, dict[str, Any]]
    events: list[Any] = field(default_factory=list)
    detail: dict[str, dict[str, Any]] | None = None


# Build what rooms get: (room key -> the messages coalesced into its send, the keys whose detail room
# has a tab here) to room key -> its Push (a key left out sends nothing). One call builds every room
# due at that moment.
PushBuilder = Callable[[dict[str, list[bus.Message]], frozenset[str]], dict[str, Push]]


@dataclass(frozen=True)
class _Broadcaster:
    key_field: str  # the message field naming the room's key
    room: Callable[[str], str]
    build: PushBuilder
    detail_room: Callable[[str], str] | None = None


@dataclass
class _BuildQueue:
    waiting: list[tuple[dict[str, list[bus.Message]], frozenset[str], asyncio.Future]] = field(default_factory=list)
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


def user_detail_room(user_id: str) -> str:
    return f"user:{user_id}:detail"


def broadcast_on(topic: str, *, key_field: str, build_delta: DeltaBuilder) -> None:
    """When `topic` arrives, send `build_delta(message[key_field])` to the room of that key on every worker.

    `build_delta` runs in a thread (it may read the database) once per worker per send.
    """

    def build(due: dict[str, list[bus.Message]], _detailed: frozenset[str]) -> dict[str, Push]:
        deltas = {key: build_delta(key) for key in due}
        return {key: Push(delta) for key, delta in deltas.items() if delta is not None}

    _broadcasters[topic] = _Broadcaster(key_field, lambda key: room_name(topic, key), build)


def push_to_user_on(topic: str, build: PushBuilder) -> None:
    """When `topic` arrives for a user, send what `build` makes for them to the user's room on every worker.

    `build({user_id: messages}, detailed)` runs in a thread on workers where those users have a tab,
    for every user due at once; `messages` are the ones coalesced into that user's send (within
    BROADCAST_INTERVAL); `detailed` names the users with a tab in their detail room on this worker
    (`join_user_detail_room`), whose Push should carry a `detail` delta.
    """
    _broadcasters[topic] = _Broadcaster("user_id", user_room, build, user_detail_room)


class RoomEmitManager(socketio.AsyncManager):
    """Socket.io's room bookkeeping, with two costs taken out of it.

    Emits hand the packet (encoded once) to each socket in turn: socket.io's own manager starts one
    task per recipient and waits for them all, which at 1,000 recipients costs more than the sends
    (engine.io only queues the packet; its writer sends it).

    A socket's rooms are indexed by socket: socket.io finds them by testing every room of the
    namespace (each socket has at least two), so when n tabs drop at once (a deploy, a network blip)
    their disconnects cost n² on the event loop that serves every other tab.
    """

    def __init__(self) -> None:
        super().__init__()
        self._rooms_of: dict[str, dict[str, set[str | None]]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault(namespace, {}).setdefault(sid, set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get(namespace, {}).get(sid)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[namespace][sid]

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        return [room for room in self._rooms_of.get(namespace, {}).get(sid, ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # socket.io's own version, with the socket's rooms read from the index instead of a scan.
        for room in list(self._rooms_of.get(namespace, {}).get(sid, ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    async def emit(  # noqa: PLR0917  socket.io's signature
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: str | None = None,
        ignore_queue: bool = False,  # socket.io's server always passes it; only queue managers use it
        **kwargs: Any,
    ) -> None:
        # `ignore_queue` must be a parameter: socket.io's server passes it on every emit, and as one of
        # `kwargs` it sent every emit down socket.io's own path (a task per recipient).
        if callback is not None or kwargs or namespace not in self.rooms:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs)
            return
        arguments = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self.server.packet_class(
            socketio.packet.EVENT, namespace=namespace, data=[event, *arguments]
        ).encode()
        packets = [
            engineio_packet.Packet(engineio_packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        for sid, eio_sid in list(self.get_participants(namespace, to or room)):
            if sid in skip:
                continue
            try:
                for part in packets:
                    await self.server.eio.send_packet(eio_sid, part)
            except Exception:  # one closed socket must not cost the others their update
                logger.debug("could not send to a socket", exc_info=True)


def use_room_emit_manager(app: rx.App) -> None:
    """Give the app's socket.io server the RoomEmitManager (before any socket connects)."""
    server = app.sio
    if server is None or isinstance(server.manager, RoomEmitManager):
        return
    manager = RoomEmitManager()
    manager.set_server(server)
    server.manager = manager


def sockets_first(app: rx.App) -> Callable[[Any], Any]:
    """An api_transformer that hands Reflex's websocket (`/_event`) straight to its socket app.

    Otherwise every connection runs inside two more ASGI apps (our FastAPI and Reflex's own), each
    with its middleware: about 20 coroutines held per open tab for as long as it stays open (memory
    per idle client) and 2 more wrappers on every packet sent. HTTP requests keep the whole stack;
    none of those middlewares acts on websockets (CORS, request ids and error pages are HTTP-only).
    """
    path = get_config().prepend_backend_path(str(constants.Endpoint.EVENT))

    def transform(asgi_app: Any) -> Any:
        mounted = getattr(app, "_api", None)
        socket_app = next(
            (r.app for r in getattr(mounted, "routes", []) if isinstance(r, Mount) and r.path == path), None
        )
        if socket_app is None:
            logger.warning("Reflex's socket app was not found at %s; websockets take the full stack", path)
            return asgi_app

        async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "websocket" and scope["path"].startswith(path):
                await socket_app(scope, receive, send)
            else:
                await asgi_app(scope, receive, send)

        return route

    return transform


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


async def _move(*, sid: str, user_id: str, enter: tuple[str, ...] = (), leave: tuple[str, ...] = ()) -> None:
    namespace = _namespace()
    if namespace is None or not sid or not user_id:
        return
    for room in leave:
        await namespace.leave_room(sid, room)
    for room in enter:
        await namespace.enter_room(sid, room)


async def join_user_room(*, user_id: str, sid: str) -> None:
    """Put the tab with socket id `sid` in its user's room. `user_id` must come from the tab's session."""
    await _move(sid=sid, user_id=user_id, enter=(user_room(user_id),))


async def leave_user_room(*, user_id: str, sid: str) -> None:
    await _move(sid=sid, user_id=user_id, leave=(user_room(user_id), user_detail_room(user_id)))


async def join_user_detail_room(*, user_id: str, sid: str) -> None:
    """While a tab shows more of its user's data (an open list), it also gets the pushes' `detail`.
    `user_id` must come from the tab's session."""
    await _move(sid=sid, user_id=user_id, enter=(user_detail_room(user_id),))


async def leave_user_detail_room(*, user_id: str, sid: str) -> None:
    await _move(sid=sid, user_id=user_id, leave=(user_detail_room(user_id),))


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


async def _build(topic: str, due: dict[str, list[bus.Message]], detailed: frozenset[str]) -> dict[str, Push]:
    """What the rooms of `due` get, built together with every other room of `topic` due meanwhile."""
    queue = _queues.setdefault(topic, _BuildQueue())
    future: asyncio.Future = asyncio.get_running_loop().create_future()
    queue.waiting.append((due, detailed, future))
    if not queue.running:
        queue.running = True
        queue.task = asyncio.create_task(_run_builds(topic, queue))
    return await future


async def _run_builds(topic: str, queue: _BuildQueue) -> None:
    try:
        await asyncio.sleep(0)  # let the other sends of this burst that are already here join
        while queue.waiting:
            batch, queue.waiting = queue.waiting, []
            due: dict[str, list[bus.Message]] = defaultdict(list)
            detailed: set[str] = set()
            for rooms, details, _future in batch:
                detailed.update(details)
                for key, messages in rooms.items():
                    due[key].extend(messages)
            try:
                pushes = await asyncio.to_thread(_broadcasters[topic].build, dict(due), frozenset(detailed))
            except Exception as error:
                for _rooms, _details, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for _rooms, _details, future in batch:
                if not future.done():
                    future.set_result(pushes)
    finally:
        queue.running = False


def _take(sender: _RoomSender) -> list[bus.Message]:
    sender.last_sent = time.monotonic()
    messages, sender.messages = sender.messages, []
    return messages


async def _broadcast(app: rx.App, topic: str, keyed: dict[str, list[bus.Message]]) -> None:
    """Throttled, change-only emits of ready-made deltas to the rooms of `keyed` on this worker.

    The rooms free to send now are built together and sent at once; a room sent to less than
    BROADCAST_INTERVAL ago waits, and messages arriving meanwhile join that send (it builds after
    the wait, so it carries the latest value); one arriving during a build starts the next send: the
    last value is never dropped.
    """
    broadcaster = _broadcasters[topic]
    namespace = app.event_namespace
    now = time.monotonic()
    _prune_senders(now)
    due: dict[str, list[bus.Message]] = {}
    later = []
    for key, messages in keyed.items():
        room = broadcaster.room(key)
        sender = _senders.get((topic, room))
        if sender is None:
            if namespace is None or not _has_members(namespace, room):
                continue  # no tab of it on this worker (most users' on one of several workers)
            sender = _senders[topic, room] = _RoomSender()
        sender.messages.extend(messages)
        if sender.pending:
            continue  # a send is already due; it will read the latest value
        wait = sender.last_sent + BROADCAST_INTERVAL - now
        if wait > 0:
            sender.pending = True
            later.append(_send_after(app, topic, key, sender, wait))
        else:
            due[key] = _take(sender)
    await asyncio.gather(_send_rooms(app, topic, due), *later)


async def _send_after(app: rx.App, topic: str, key: str, sender: _RoomSender, wait: float) -> None:
    try:
        await asyncio.sleep(wait)
    finally:
        sender.pending = False
    await _send_rooms(app, topic, {key: _take(sender)})


async def _send_rooms(app: rx.App, topic: str, due: dict[str, list[bus.Message]]) -> None:
    namespace = app.event_namespace
    if namespace is None or not due:
        return
    broadcaster = _broadcasters[topic]
    rooms = {key: broadcaster.room(key) for key in due if _has_members(namespace, broadcaster.room(key))}
    if not rooms:
        return
    detail_room = broadcaster.detail_room
    detailed = frozenset(key for key in rooms if detail_room is not None and _has_members(namespace, detail_room(key)))
    pushes = await _build(topic, {key: due[key] for key in rooms}, detailed)
    for key, room in rooms.items():
        push = pushes.get(key)
        sender = _senders.get((topic, room))
        if push is None or sender is None:
            continue
        if push.delta != sender.last_delta or push.events:
            sender.last_delta = push.delta
            update = StateUpdate(delta=push.delta, events=Event.from_event_type(push.events))
            await namespace.emit(str(SocketEvent.EVENT), update, to=room)
        if push.detail is not None and detail_room is not None and key in detailed:
            await namespace.emit(str(SocketEvent.EVENT), StateUpdate(delta=push.detail), to=detail_room(key))


async def _on_messages(app: rx.App, messages: list[bus.Message]) -> None:
    """One bus batch (one commit's messages): room messages grouped per topic and room, the rest one by one."""
    keyed: defaultdict[str, defaultdict[str, list[bus.Message]]] = defaultdict(lambda: defaultdict(list))
    others = []
    for message in messages:
        topic = str(message.get("topic"))
        if topic in _staff_refreshers:
            task = asyncio.ensure_future(_broadcast_to_staff(app, topic))
            _staff_sends.add(task)
            task.add_done_callback(_staff_sends.discard)
        broadcaster = _broadcasters.get(topic)
        if broadcaster is not None and message.get(broadcaster.key_field):
            keyed[topic][str(message[broadcaster.key_field])].append(message)
        elif broadcaster is None:
            others.append(message)
    await asyncio.gather(
        *(_broadcast(app, topic, dict(rooms)) for topic, rooms in keyed.items()),
        *(_refresh_tabs(app, message) for message in others),
    )


async def _on_message(app: rx.App, message: bus.Message) -> None:
    await _on_messages(app, [message])


async def _refresh_tabs(app: rx.App, message: bus.Message) -> None:
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
                    await namespace.leave_room(sid, user_detail_room(user_id))
            for client_token in _tabs_by_session.pop(session_id, set()):
                _staff_tabs.discard(client_token)
                for tabs in _tabs_by_user.values():
                    tabs.discard(client_token)
                await _send(app, client_token, [expired])


async def run_live_updates(app: rx.App) -> None:
    """Lifespan task: receive bus messages (via Redis when configured) and push them to tabs."""

    global _app
    _app = app

    async def handle(messages: list[bus.Message]) -> None:
        try:
            await _on_messages(app, messages)
        except Exception:
            logger.exception(
                "could not push a live update", extra={"topics": sorted({str(m.get("topic")) for m in messages})}
            )

    bus.subscribe(handle)
    await bus.relay_from_redis()
