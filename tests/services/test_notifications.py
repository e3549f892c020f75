"""Notifications read for many users at once (live pushes) agree with each user's own centre."""

import uuid

import pytest
from sqlalchemy import event, text

from paytime_app.services.notifications import (
    count_unread_by_recipient,
    get_notifications_by_id,
    mark_all_read,
    notify,
    read_notification_centre,
    read_notification_centres,
)
from paytime_app.services.users import create_user


def test_many_centres_at_once_match_each_users_own(session):
    ada, ben, cy = (
        create_user(session=session, email=f"{name}@example.com", display_name=name, password=None)
        for name in ("ada", "ben", "cy")
    )
    for number in range(5):
        notify(session=session, recipient_id=ada.id, kind="transfer.received", amount_minor=number, currency="NGN")
    for number in range(2):
        notify(session=session, recipient_id=ben.id, kind="friend.requested", actor=ada, note=str(number))
    mark_all_read(session=session, actor=ben)
    notify(session=session, recipient_id=ben.id, kind="friend.accepted", actor=cy)
    session.flush()

    nobody = uuid.uuid4()
    centres = read_notification_centres(session=session, recipient_ids=[ada.id, ben.id, cy.id, nobody], limit=3)

    for user in (ada, ben, cy):
        found, unread = read_notification_centre(session=session, actor=user, limit=3)
        assert ([n.id for n in centres[user.id][0]], centres[user.id][1]) == ([n.id for n in found], unread)
    assert [len(centres[user.id][0]) for user in (ada, ben, cy)] == [3, 3, 0]
    assert [centres[user.id][1] for user in (ada, ben, cy)] == [5, 1, 0]
    assert centres[nobody] == ([], 0)
    assert read_notification_centres(session=session, recipient_ids=[], limit=3) == {}


def test_unread_counts_and_named_notifications_for_many_users_at_once(session):
    ada, ben = (
        create_user(session=session, email=f"{name}@example.com", display_name=name, password=None)
        for name in ("ada", "ben")
    )
    old = notify(session=session, recipient_id=ben.id, kind="friend.requested", actor=ada)
    mark_all_read(session=session, actor=ben)
    named = [
        notify(session=session, recipient_id=ada.id, kind="transfer.received", amount_minor=number, currency="NGN")
        for number in range(3)
    ]
    named.append(notify(session=session, recipient_id=ben.id, kind="friend.accepted", actor=ada))
    session.flush()
    nobody = uuid.uuid4()

    counts = count_unread_by_recipient(session=session, recipient_ids=[ada.id, ben.id, nobody])
    assert counts == {ada.id: 3, ben.id: 1, nobody: 0}
    for user in (ada, ben):
        assert counts[user.id] == read_notification_centre(session=session, actor=user)[1]

    found = get_notifications_by_id(session=session, notification_ids=[n.id for n in [old, *named]] + [nobody])
    assert [(row.id, row.recipient_id, row.kind) for row in found] == [
        (n.id, n.recipient_id, n.kind) for n in [old, *named]
    ]
    assert [row.read_at is None for row in found] == [False, True, True, True, True]
    assert count_unread_by_recipient(session=session, recipient_ids=[]) == {}
    assert get_notifications_by_id(session=session, notification_ids=[]) == []


def test_unread_count_reads_only_the_unread_rows_on_postgresql(session):
    """A long read history must not slow down the count every live push makes: the statement the
    service sends is planned through the unread index."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the planner's choice is PostgreSQL's")
    ada = create_user(session=session, email="ada@example.com", display_name="ada", password=None)
    session.execute(
        text(
            "INSERT INTO notification (id, created_at, recipient_id, kind, payload, read_at)"
            " SELECT gen_random_uuid(), now(), :ada, 'transfer.received', '{}', now() FROM generate_series(1, 3000)"
        ),
        {"ada": ada.id},
    )
    notify(session=session, recipient_id=ada.id, kind="friend.accepted", actor=ada)
    session.flush()
    session.execute(text("ANALYZE notification"))
    connection = session.connection()
    sent: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        assert count_unread_by_recipient(session=session, recipient_ids=[ada.id]) == {ada.id: 1}
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    ((statement, parameters),) = sent
    cursor = connection.connection.cursor()
    cursor.execute(f"EXPLAIN {statement}", parameters)
    assert "ix_notification_unread" in "\n".join(row[0] for row in cursor.fetchall())
