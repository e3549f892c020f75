"""The notification centre live: a signed-in tab joins its own user's room (the user from the session
cookie, never from the client); a new notification reaches that room as one ready-made delta with its
toast; another user's tab receives nothing; a tab leaves the room when its session ends."""

import asyncio
import uuid

import pytest

from paytime_app import live
from paytime_app.db import in_transaction
from paytime_app.services.notifications import TOPIC, mark_all_read, notify
from paytime_app.services.sessions import ClientInfo, end_session, start_browser_session
from paytime_app.services.users import create_user
from paytime_app.state.notifications import NotificationsState
from tests.state.harness import make_state, run_handler
from tests.test_live import FakeApp

UNREAD = "unread" + "_rx_state_"


def person(email: str):
    user = in_transaction(create_user, email=email, display_name=email.split("@", maxsplit=1)[0], password=None)
    return user, in_transaction(start_browser_session, user=user, client=ClientInfo()).token


@pytest.fixture
def app(monkeypatch):
    fake = FakeApp()
    monkeypatch.setattr(live, "_app", fake)
    monkeypatch.setattr(live, "_senders", {})
    monkeypatch.setattr(live, "_queues", {})
    monkeypatch.setattr(live, "_sockets_by_session", live.defaultdict(set))
    monkeypatch.setattr(live, "_tabs_by_session", live.defaultdict(set))
    monkeypatch.setattr(live, "_tabs_by_user", live.defaultdict(set))
    return fake


def _notify(recipient_id: uuid.UUID) -> dict:
    notification = in_transaction(
        notify, recipient_id=recipient_id, kind="transfer.received", amount_minor=2500, currency="NGN"
    )
    return {"topic": TOPIC, "user_id": str(recipient_id), "notification_id": str(notification.id)}


def test_a_notification_reaches_only_the_recipients_tabs_as_one_delta_with_a_toast(engine, app):
    ada, ada_token = person("ada@example.com")
    ben, ben_token = person("ben@example.com")
    tabs = {
        "ada-1": make_state(NotificationsState, session_token=ada_token, sid="ada-1"),
        "ada-2": make_state(NotificationsState, session_token=ada_token, sid="ada-2"),
        "ben": make_state(NotificationsState, session_token=ben_token, sid="ben"),
        "anonymous": make_state(NotificationsState, sid="anonymous"),
    }
    for state in tabs.values():
        asyncio.run(run_handler(state, "load_notifications"))
    rooms = {room: sids for room, sids in app.event_namespace.rooms.items() if sids}
    assert rooms == {f"user:{ada.id}": {"ada-1", "ada-2"}, f"user:{ben.id}": {"ben"}}

    asyncio.run(live._on_message(app, _notify(ada.id)))

    received = app.event_namespace.received
    assert set(received) == {"ada-1", "ada-2"}
    [update] = received["ada-1"]
    [values] = update.delta.values()
    assert values[UNREAD] == 1
    assert values["unread_label_rx_state_"] == "1"
    assert "notifications_rx_state_" not in values  # the list is read when the centre opens
    [toast] = update.events
    assert toast.name == "_call_function"
    assert "Someone sent you" in str(toast.payload)


def test_an_open_centre_gets_the_new_list_live_and_a_closed_one_does_not(engine, app):
    ada, ada_token = person("ada@example.com")
    _ben, ben_token = person("ben@example.com")
    open_tab = make_state(NotificationsState, session_token=ada_token, sid="ada-open")
    closed_tab = make_state(NotificationsState, session_token=ada_token, sid="ada-closed")
    bens_tab = make_state(NotificationsState, session_token=ben_token, sid="ben")
    for state in (open_tab, closed_tab, bens_tab):
        asyncio.run(run_handler(state, "load_notifications"))
    asyncio.run(run_handler(open_tab, "open_centre", True))
    asyncio.run(run_handler(bens_tab, "open_centre", True))
    assert app.event_namespace.rooms[f"user:{ada.id}:detail"] == {"ada-open"}

    asyncio.run(live._on_message(app, _notify(ada.id)))

    received = app.event_namespace.received
    assert set(received) == {"ada-open", "ada-closed"}
    assert received["ada-closed"] == received["ada-open"][:1]  # the badge and the toast
    [_badge, listing] = received["ada-open"]
    [values] = listing.delta.values()
    assert [row["text"] for row in values["notifications_rx_state_"]] == ["Someone sent you ₦25.00."]
    assert values[UNREAD] == 1
    assert listing.events == []  # the toast came once

    asyncio.run(run_handler(open_tab, "open_centre", False))
    assert app.event_namespace.rooms[f"user:{ada.id}:detail"] == set()


def test_a_message_naming_someone_elses_notification_toasts_nothing(engine, app):
    ada, ada_token = person("ada@example.com")
    ben, _ben_token = person("ben@example.com")
    asyncio.run(run_handler(make_state(NotificationsState, session_token=ada_token, sid="ada"), "load_notifications"))
    bens = _notify(ben.id)
    asyncio.run(live._on_message(app, {**bens, "user_id": str(ada.id)}))
    [update] = app.event_namespace.received["ada"]
    assert next(iter(update.delta.values()))[UNREAD] == 0
    assert update.events == []


def test_reading_them_clears_the_badge_in_every_tab_without_a_toast(engine, app, monkeypatch):
    ada, ada_token = person("ada@example.com")
    asyncio.run(run_handler(make_state(NotificationsState, session_token=ada_token, sid="ada-1"), "load_notifications"))
    asyncio.run(live._on_message(app, _notify(ada.id)))
    in_transaction(mark_all_read, actor=ada)
    monkeypatch.setattr(live, "BROADCAST_INTERVAL", 0)  # the read comes later than one interval
    asyncio.run(live._on_message(app, {"topic": TOPIC, "user_id": str(ada.id), "kind": "read"}))
    first, second = app.event_namespace.received["ada-1"]
    assert [next(iter(u.delta.values()))[UNREAD] for u in (first, second)] == [1, 0]
    assert second.events == []


def test_an_ended_session_takes_the_tab_out_of_the_room(engine, app):
    ada, ada_token = person("ada@example.com")
    state = make_state(NotificationsState, session_token=ada_token, sid="ada-1")
    asyncio.run(run_handler(state, "load_notifications"))
    in_transaction(end_session, token=ada_token)
    asyncio.run(live._on_message(app, {"topic": "sessions.ended", "session_ids": [state._session_id]}))
    asyncio.run(live._on_message(app, _notify(ada.id)))
    assert app.event_namespace.rooms[f"user:{ada.id}"] == set()
    assert app.event_namespace.received == {}


def test_signing_out_leaves_the_room_at_once(engine, app):
    ada, ada_token = person("ada@example.com")
    state = make_state(NotificationsState, session_token=ada_token, sid="ada-1")
    asyncio.run(run_handler(state, "load_notifications"))
    asyncio.run(run_handler(state.parent_state, "sign_out"))  # AuthState's handler, as the top bar calls it
    asyncio.run(live._on_message(app, _notify(ada.id)))
    assert app.event_namespace.received == {}
