"""Live pushes: a user's messages reach only that user's tabs; topic rooms get one ready-made delta
per worker, throttled, only on change."""

import asyncio
import gc
import random
from types import SimpleNamespace

import engineio
import pytest
import socketio
from reflex_base.event import Event
from starlette.routing import Mount

from paytime_app import live
from paytime_app import paytime_app as _app  # registers every page's live refreshers
from paytime_app.lifespan import GC_YOUNG_THRESHOLD, steady_heap
from paytime_app.state.notifications import pushed_toast, toast_spec


class RecordingNamespace:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []

    async def emit_update(self, update, token: str) -> None:
        self.sent.append((token, [event.name for event in update.events]))


@pytest.fixture
def tabs(monkeypatch):
    monkeypatch.setattr(live, "_tabs_by_user", live.defaultdict(set))
    monkeypatch.setattr(live, "_tabs_by_session", live.defaultdict(set))
    live.watch_tab(client_token="ada-tab-1", session_id="s-ada", user_id="ada")
    live.watch_tab(client_token="ada-tab-2", session_id="s-ada-2", user_id="ada")
    live.watch_tab(client_token="ben-tab", session_id="s-ben", user_id="ben")
    namespace = RecordingNamespace()
    return SimpleNamespace(app=SimpleNamespace(event_namespace=namespace), sent=namespace.sent)


@pytest.mark.parametrize("topic", ["friend.updated", "iou.updated", "wallet.updated"])
def test_message_reaches_only_the_named_users_tabs(tabs, topic):
    asyncio.run(live._on_message(tabs.app, {"topic": topic, "user_id": "ada"}))
    assert sorted(token for token, _events in tabs.sent) == ["ada-tab-1", "ada-tab-2"]
    assert all(events for _token, events in tabs.sent)


def test_notifications_go_to_the_user_room_not_to_each_tab(tabs):
    asyncio.run(live._on_message(tabs.app, {"topic": "notification.created", "user_id": "ben"}))
    assert tabs.sent == []  # no per-tab push: the user's room gets a ready-made delta (tests below)


def test_message_without_a_user_reaches_nobody(tabs):
    asyncio.run(live._on_message(tabs.app, {"topic": "friend.updated"}))
    assert tabs.sent == []


class FakeNamespace:
    """Socket.io's side: rooms per socket id; an emit to a room reaches the sockets in it."""

    namespace = "/_event"

    def __init__(self) -> None:
        self.emitted: list[tuple[str, object, str]] = []
        self.rooms: dict[str, set[str]] = {}
        self.received: dict[str, list[object]] = {}
        self.sent: list[tuple[str, list[str]]] = []
        self.server = SimpleNamespace(manager=self)

    def get_participants(self, namespace: str, room: str):
        assert namespace == self.namespace
        return iter([(sid, sid) for sid in self.rooms.get(room, set())])

    async def emit(self, event: str, data: object, to: str) -> None:
        self.emitted.append((event, data, to))
        for sid in self.rooms.get(to, set()):
            self.received.setdefault(sid, []).append(data)

    async def emit_update(self, update, token: str) -> None:
        self.sent.append((token, [event.name for event in update.events]))

    async def enter_room(self, sid: str, room: str) -> None:
        self.rooms.setdefault(room, set()).add(sid)

    async def leave_room(self, sid: str, room: str) -> None:
        self.rooms.get(room, set()).discard(sid)


class FakeApp:
    def __init__(self) -> None:
        self.event_namespace = FakeNamespace()


@pytest.fixture
def app(monkeypatch):
    fake = FakeApp()
    monkeypatch.setattr(live, "_app", fake)
    monkeypatch.setattr(live, "_senders", {})
    monkeypatch.setattr(live, "_broadcasters", {})
    monkeypatch.setattr(live, "_queues", {})
    monkeypatch.setattr(live, "BROADCAST_INTERVAL", 0.2)
    return fake


def test_join_room_moves_a_tab_between_rooms(app):
    async def scenario() -> None:
        first = await live.join_room(topic="event.seats", key="a", sid="sid-1")
        await live.join_room(topic="event.seats", key="b", sid="sid-1", leave=first)

    asyncio.run(scenario())
    assert app.event_namespace.rooms == {"topic:event.seats:a": set(), "topic:event.seats:b": {"sid-1"}}


def test_burst_of_changes_sends_at_most_one_delta_per_interval_and_only_changes(app):
    app.event_namespace.rooms["topic:event.seats:e1"] = {"viewer"}
    seats = {"left": 10}
    builds: list[str] = []

    def build(key: str) -> dict:
        builds.append(key)
        return {"state": {"seats": seats["left"]}}

    live.broadcast_on("event.seats", key_field="event_id", build_delta=build)

    async def scenario() -> None:
        message = {"topic": "event.seats", "event_id": "e1"}
        await live._on_message(app, message)  # first change: sent at once
        seats["left"] = 9
        # A burst within the interval: one trailing send carries the latest value.
        await asyncio.gather(*[live._on_message(app, message) for _ in range(20)])
        seats["left"] = 8
        await asyncio.gather(*[live._on_message(app, message) for _ in range(5)])
        await live._on_message(app, message)  # nothing changed since: nothing sent

    asyncio.run(scenario())
    sent = [(data.delta["state"]["seats"], room) for _event, data, room in app.event_namespace.emitted]
    assert sent == [(10, "topic:event.seats:e1"), (9, "topic:event.seats:e1"), (8, "topic:event.seats:e1")]
    assert len(builds) <= 4


def test_messages_for_other_topics_do_not_broadcast(app):
    live.broadcast_on("event.seats", key_field="event_id", build_delta=lambda key: {"s": {"k": key}})
    asyncio.run(live._on_message(app, {"topic": "wallet.updated", "user_id": "u1"}))
    asyncio.run(live._on_message(app, {"topic": "event.seats"}))  # no key: nothing to send
    assert app.event_namespace.emitted == []


def test_user_room_burst_is_coalesced_keeps_the_last_value_and_reaches_only_that_user(app):
    app.event_namespace.rooms = {"user:ada": {"ada-sid-1", "ada-sid-2"}, "user:ben": {"ben-sid"}}
    unread = {"ada": 0}
    builds: list[tuple[str, list[str]]] = []

    def build(due: dict[str, list[dict]], _detailed: frozenset[str]) -> dict[str, live.Push]:
        for user_id, messages in due.items():
            builds.append((user_id, [m["notification_id"] for m in messages]))
        return {user_id: live.Push(delta={"state": {"unread": unread[user_id]}}) for user_id in due}

    live.push_to_user_on("notification.created", build)

    async def scenario() -> None:
        def message(number: int) -> dict:
            unread["ada"] = number
            return {"topic": "notification.created", "user_id": "ada", "notification_id": f"n{number}"}

        await live._on_message(app, message(1))
        await asyncio.gather(*[live._on_message(app, message(number)) for number in range(2, 7)])

    asyncio.run(scenario())
    received = app.event_namespace.received
    assert set(received) == {"ada-sid-1", "ada-sid-2"}  # Ben's tab receives nothing
    assert [update.delta["state"]["unread"] for update in received["ada-sid-1"]] == [1, 6]
    assert builds == [("ada", ["n1"]), ("ada", ["n2", "n3", "n4", "n5", "n6"])]


def test_user_room_without_a_tab_on_this_worker_costs_no_build(app):
    builds: list[str] = []
    live.push_to_user_on("notification.created", lambda due, _detailed: builds.append(due) or {})
    asyncio.run(live._on_message(app, {"topic": "notification.created", "user_id": "cy"}))
    assert builds == []
    assert app.event_namespace.emitted == []
    assert live._senders == {}  # nor a throttle record: with several workers, most users are elsewhere


def test_session_end_takes_its_tabs_out_of_the_user_room(app, monkeypatch):
    monkeypatch.setattr(live, "_sockets_by_session", live.defaultdict(set))
    monkeypatch.setattr(live, "_tabs_by_session", live.defaultdict(set))
    monkeypatch.setattr(live, "_tabs_by_user", live.defaultdict(set))

    async def scenario() -> None:
        for sid, session_id in (("sid-1", "s-1"), ("sid-2", "s-2")):
            live.watch_tab(client_token=f"tab-{sid}", session_id=session_id, user_id="ada", sid=sid)
            await live.join_user_room(user_id="ada", sid=sid)
            await live.join_user_detail_room(user_id="ada", sid=sid)
        await live._on_message(app, {"topic": "sessions.ended", "session_ids": ["s-1"]})

    asyncio.run(scenario())
    assert app.event_namespace.rooms["user:ada"] == {"sid-2"}
    assert app.event_namespace.rooms["user:ada:detail"] == {"sid-2"}
    assert [token for token, _events in app.event_namespace.sent] == ["tab-sid-1"]


def test_detail_is_built_only_for_users_with_a_tab_in_their_detail_room_and_reaches_only_those_tabs(app):
    app.event_namespace.rooms = {
        "user:ada": {"ada-open", "ada-closed"},
        "user:ada:detail": {"ada-open"},
        "user:ben": {"ben-sid"},
        "user:cy:detail": {"cy-gone"},  # not in cy's user room (any more): cy is not due here
    }
    asked: list[frozenset[str]] = []

    def build(due: dict[str, list[dict]], detailed: frozenset[str]) -> dict[str, live.Push]:
        asked.append(detailed)
        return {
            user: live.Push(
                delta={"state": {"unread": 1}}, detail={"state": {"list": [user]}} if user in detailed else None
            )
            for user in due
        }

    live.push_to_user_on("notification.created", build)
    messages = [{"topic": "notification.created", "user_id": user} for user in ("ada", "ben", "cy")]
    asyncio.run(live._on_messages(app, messages))
    assert asked == [frozenset({"ada"})]
    received = {sid: [update.delta for update in updates] for sid, updates in app.event_namespace.received.items()}
    assert received == {
        "ada-open": [{"state": {"unread": 1}}, {"state": {"list": ["ada"]}}],
        "ada-closed": [{"state": {"unread": 1}}],
        "ben-sid": [{"state": {"unread": 1}}],
    }


def test_a_burst_to_many_users_is_built_in_few_batches_and_each_room_gets_its_own_delta(app):
    users = [f"u{number}" for number in range(40)]
    app.event_namespace.rooms = {f"user:{user}": {f"{user}-sid"} for user in users}
    batches: list[list[str]] = []

    def build(due: dict[str, list[dict]], _detailed: frozenset[str]) -> dict[str, live.Push]:
        batches.append(sorted(due))
        return {user: live.Push(delta={"state": {"me": user}}) for user in due}

    live.push_to_user_on("notification.created", build)

    async def scenario() -> None:
        await asyncio.gather(
            *[live._on_message(app, {"topic": "notification.created", "user_id": user}) for user in users]
        )

    asyncio.run(scenario())
    assert len(batches) <= 2
    assert sorted(user for batch in batches for user in batch) == sorted(users)
    received = app.event_namespace.received
    assert {sid: [update.delta["state"]["me"] for update in updates] for sid, updates in received.items()} == {
        f"{user}-sid": [user] for user in users
    }


@pytest.mark.parametrize("text", ["Ada sent you ₦25.00.", 'Ben says “lunch” \\ "quoted" </script> ${x}'])
def test_a_pushed_toast_is_the_toast_reflex_makes(text):
    assert pushed_toast(text) == Event.from_event_type([toast_spec(text)])[0]


async def _room_emit(manager: object) -> list[tuple[str, str]]:
    """Emit to a room of three sockets (one of them closed) through a socket.io server with `manager`."""
    server = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    sent: list[tuple[str, str]] = []

    async def send_packet(eio_sid: str, packet: object) -> None:
        if eio_sid == "eio-closed":
            raise engineio.exceptions.SocketIsClosedError
        sent.append((eio_sid, packet.encode()))

    server.eio.send_packet = send_packet
    server.manager.initialize()
    for eio_sid in ("eio-a", "eio-closed", "eio-b", "eio-elsewhere"):
        sid = await server.manager.connect(eio_sid, "/_event")
        if eio_sid != "eio-elsewhere":
            await server.manager.enter_room(sid, "/_event", "user:ada")
    update = {"delta": {"state": {"unread": 2, "text": "₦25.00 “lunch”"}}, "events": []}
    await server.emit("event", update, to="user:ada", namespace="/_event")
    await asyncio.sleep(0.01)  # socket.io's own manager sends from tasks
    return sent


def test_room_emit_manager_sends_what_socketio_sends_to_each_socket_in_the_room():
    ours = asyncio.run(_room_emit(live.RoomEmitManager()))
    theirs = asyncio.run(_room_emit(socketio.AsyncManager()))
    assert sorted(ours) == sorted(theirs)
    # the closed socket did not stop the socket after it; a socket outside the room got nothing
    assert sorted(eio_sid for eio_sid, _packet in ours) == ["eio-a", "eio-b"]


def _manager_on_a_server(manager: socketio.AsyncManager) -> socketio.AsyncManager:
    server = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    ids = iter(range(1_000_000))
    server.eio.generate_id = lambda: f"sid-{next(ids)}"  # the same ids for every manager compared
    server.manager.initialize()
    return server.manager


def test_room_emit_manager_keeps_socketio_room_bookkeeping():
    """Random connects, room changes, closed rooms and disconnects leave both managers alike."""

    async def replay(manager: socketio.AsyncManager) -> list:
        manager = _manager_on_a_server(manager)
        rng = random.Random(7)
        sids: list[str] = []
        seen = []
        for step in range(600):
            action = rng.random()
            if action < 0.25 or not sids:
                sids.append(await manager.connect(f"eio-{step}", "/_event"))
            elif action < 0.55:
                await manager.enter_room(rng.choice(sids), "/_event", f"user:{rng.randrange(8)}")
            elif action < 0.7:
                await manager.leave_room(rng.choice(sids), "/_event", f"user:{rng.randrange(8)}")
            elif action < 0.75:
                await manager.close_room(f"user:{rng.randrange(8)}", "/_event")
            else:
                sid = sids.pop(rng.randrange(len(sids)))
                manager.pre_disconnect(sid, "/_event")
                await manager.disconnect(sid, "/_event")
            seen.append(sorted(tuple(sorted(manager.get_rooms(sid, "/_event"))) for sid in sids))
        return [seen, manager.rooms, manager.pending_connect, manager.pending_disconnect, manager.callbacks]

    assert asyncio.run(replay(live.RoomEmitManager())) == asyncio.run(replay(socketio.AsyncManager()))


class _NoWalkRooms(dict):
    def _walked(self, *args: object) -> None:
        raise AssertionError("walked every room of the namespace")

    items = keys = values = copy = __iter__ = _walked


def test_a_disconnect_visits_only_its_own_rooms():
    async def scenario() -> list[str]:
        manager = _manager_on_a_server(live.RoomEmitManager())
        sids = [await manager.connect(f"eio-{number}", "/_event") for number in range(50)]
        for number, sid in enumerate(sids):
            await manager.enter_room(sid, "/_event", f"user:{number}")
        manager.rooms["/_event"] = _NoWalkRooms(manager.rooms["/_event"])
        manager.pre_disconnect(sids[7], "/_event")
        await manager.disconnect(sids[7], "/_event")
        return [sid for sid, _eio in manager.get_participants("/_event", None)]

    remaining = asyncio.run(scenario())
    assert len(remaining) == 49
    assert "sid-7" not in remaining


def test_room_emits_through_the_server_take_the_lean_path():
    """The server's emit reaches RoomEmitManager's own loop (no task per recipient), not socket.io's."""

    async def scenario() -> list[str]:
        server = socketio.AsyncServer(async_mode="asgi", client_manager=live.RoomEmitManager())
        sent: list[str] = []

        async def send_packet(eio_sid: str, packet: object) -> None:
            sent.append(eio_sid)

        async def one_task_per_recipient(eio_sid: str, packet: object) -> None:
            raise AssertionError("socket.io's own emit ran")

        server.eio.send_packet = send_packet
        server._send_eio_packet = one_task_per_recipient
        server.manager.initialize()
        for eio_sid in ("eio-a", "eio-b"):
            await server.manager.enter_room(await server.manager.connect(eio_sid, "/_event"), "/_event", "user:ada")
        await server.emit("event", {"delta": {}}, to="user:ada", namespace="/_event")
        return sent

    assert sorted(asyncio.run(scenario())) == ["eio-a", "eio-b"]


def test_the_app_sends_room_emits_through_the_room_emit_manager():
    assert isinstance(_app.app.sio.manager, live.RoomEmitManager)


def _stack_or_socket(scope_type: str, path: str) -> str:
    reached: list[str] = []

    async def socket_app(scope, receive, send) -> None:
        reached.append("socket")

    async def stack(scope, receive, send) -> None:
        reached.append("stack")

    reflex_app = SimpleNamespace(_api=SimpleNamespace(routes=[Mount("/_event", app=socket_app)]))
    route = live.sockets_first(reflex_app)(stack)
    asyncio.run(route({"type": scope_type, "path": path}, None, None))
    return reached[0]


def test_websockets_to_the_event_endpoint_skip_the_http_middleware_stack():
    assert _stack_or_socket("websocket", "/_event/") == "socket"
    assert _stack_or_socket("http", "/_event/") == "stack"
    assert _stack_or_socket("websocket", "/elsewhere") == "stack"
    assert _stack_or_socket("http", "/api/health") == "stack"


def test_reflex_still_mounts_its_socket_app_where_sockets_first_looks():
    assert any(isinstance(route, Mount) and route.path == "/_event" for route in _app.app._api.routes)


def test_steady_heap_freezes_the_start_up_heap_and_collects_young_objects_less_often():
    threshold = gc.get_threshold()

    async def scenario() -> tuple[int, int]:
        async with steady_heap():
            return gc.get_freeze_count(), gc.get_threshold()[0]

    try:
        frozen, young = asyncio.run(scenario())
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert frozen > 0
    assert young == GC_YOUNG_THRESHOLD > threshold[0]
