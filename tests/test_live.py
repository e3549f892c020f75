"""Live pushes reach only the tabs of the user a message names: nobody receives others' events."""

import asyncio
from types import SimpleNamespace

import pytest

from paytime_app import live
from paytime_app import paytime_app as _app  # noqa: F401  registers every page's live refreshers


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


@pytest.mark.parametrize("topic", ["notification.created", "friend.updated", "iou.updated", "wallet.updated"])
def test_message_reaches_only_the_named_users_tabs(tabs, topic):
    asyncio.run(live._on_message(tabs.app, {"topic": topic, "user_id": "ada"}))
    assert sorted(token for token, _events in tabs.sent) == ["ada-tab-1", "ada-tab-2"]
    assert all(events for _token, events in tabs.sent)


def test_notification_refreshes_the_notification_centre(tabs):
    asyncio.run(live._on_message(tabs.app, {"topic": "notification.created", "user_id": "ben"}))
    [(token, events)] = tabs.sent
    assert token == "ben-tab"
    assert any(name.endswith("refresh_notifications") for name in events)


def test_message_without_a_user_reaches_nobody(tabs):
    asyncio.run(live._on_message(tabs.app, {"topic": "notification.created"}))
    assert tabs.sent == []
