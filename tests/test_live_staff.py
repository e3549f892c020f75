"""Staff dashboards: a burst of payment messages becomes one refresh per throttle window for every
open staff tab; tabs of ended sessions stop receiving; user-addressed topics are not broadcast."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from paytime_app import live


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    calls: list[tuple[str, list[Any]]] = []

    async def fake_send(app: Any, client_token: str, events: list[Any]) -> None:
        calls.append((client_token, events))

    monkeypatch.setattr(live, "_send", fake_send)
    monkeypatch.setattr(live, "STAFF_THROTTLE_SECONDS", 0.05)
    monkeypatch.setattr(live, "_staff_tabs", set())
    monkeypatch.setattr(live, "_staff_refreshers", {"payments.staff": ["refresh-handler"]})
    monkeypatch.setattr(live, "_staff_pending", set())
    return calls


def test_burst_of_payment_messages_is_one_refresh_per_staff_tab(sent):
    live.watch_staff_tab(client_token="tab-a")
    live.watch_staff_tab(client_token="tab-b")
    live.watch_staff_tab(client_token="")

    async def burst() -> None:
        for index in range(20):
            await live._on_message(None, {"topic": "payments.staff", "payment_id": str(index)})
        await asyncio.sleep(0.2)

    asyncio.run(burst())
    assert sorted(sent) == [("tab-a", ["refresh-handler"]), ("tab-b", ["refresh-handler"])]


def test_ended_session_tab_no_longer_refreshed(sent, monkeypatch):
    monkeypatch.setattr(live, "_tabs_by_session", {"s1": {"tab-a"}})
    live.watch_staff_tab(client_token="tab-a")

    async def run() -> None:
        app = SimpleNamespace(event_namespace=None)  # no sockets: only the bookkeeping is under test
        await live._on_message(app, {"topic": "sessions.ended", "session_ids": ["s1"]})
        await live._on_message(app, {"topic": "payments.staff"})
        await asyncio.sleep(0.2)

    asyncio.run(run())
    assert [token for token, events in sent if events == ["refresh-handler"]] == []


def test_topics_without_staff_refreshers_are_not_broadcast(sent):
    live.watch_staff_tab(client_token="tab-a")

    async def run() -> None:
        await live._on_message(None, {"topic": "call.updated", "user_id": "u1"})
        await asyncio.sleep(0.2)

    asyncio.run(run())
    assert sent == []
