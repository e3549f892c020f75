"""Topic rooms: one ready-made delta per worker to everyone viewing a topic, throttled, only on change."""

import asyncio

import pytest

from paytime_app import live


class FakeNamespace:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, object, str]] = []
        self.rooms: dict[str, set[str]] = {}

    async def emit(self, event: str, data: object, to: str) -> None:
        self.emitted.append((event, data, to))

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
    monkeypatch.setattr(live, "BROADCAST_INTERVAL", 0.2)
    return fake


def test_join_room_moves_a_tab_between_rooms(app):
    async def scenario() -> None:
        first = await live.join_room(topic="event.seats", key="a", sid="sid-1")
        await live.join_room(topic="event.seats", key="b", sid="sid-1", leave=first)

    asyncio.run(scenario())
    assert app.event_namespace.rooms == {"topic:event.seats:a": set(), "topic:event.seats:b": {"sid-1"}}


def test_burst_of_changes_sends_at_most_one_delta_per_interval_and_only_changes(app):
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
