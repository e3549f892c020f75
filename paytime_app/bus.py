"""Messages for open browser tabs, published only once the transaction that caused them commits.

Services call `publish_after_commit`; they know nothing of Reflex or sockets. Without Redis, a
message goes straight to this process's subscribers; with Redis it goes through one pub/sub channel
so that every app worker (on every host) hands it to the tabs connected to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from paytime_app.db import undone_by
from paytime_app.redis_client import get_redis

logger = logging.getLogger("paytime.bus")

CHANNEL_PREFIX = "paytime:bus"
Message = dict[str, Any]
Subscriber = Callable[[list[Message]], Awaitable[None]]

_subscribers: list[tuple[asyncio.AbstractEventLoop, Subscriber]] = []
_deliveries: set[asyncio.Task[None]] = set()  # held so they are not garbage-collected while they run


def publish_after_commit(session: Session, topic: str, **payload: Any) -> None:
    """Queue a message that is sent if, and only if, this transaction commits.

    SQLAlchemy also fires `after_commit` when a SAVEPOINT (`begin_nested`) is released, and
    `after_soft_rollback` when one rolls back: a message waits for the outermost commit, and is
    dropped with the savepoint it was queued in (or with the whole transaction).
    """
    if "bus_pending" not in session.info:
        session.info["bus_pending"] = []
        event.listen(session, "after_commit", _send_pending)
        event.listen(session, "after_soft_rollback", _drop_pending)
    session.info["bus_pending"].append(({"topic": topic, **payload}, session.get_nested_transaction()))


def _send_pending(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released; the real commit is still to come
    pending, session.info["bus_pending"] = session.info["bus_pending"], []
    if pending:
        publish_many([message for message, _savepoint in pending])


def _drop_pending(session: Session, previous_transaction: Any) -> None:
    session.info["bus_pending"] = [
        (message, savepoint)
        for message, savepoint in session.info["bus_pending"]
        if not undone_by(previous_transaction, savepoint)
    ]


def channel(client: Any) -> str:
    """The pub/sub channel of the Redis DB that `client` uses: Redis pub/sub ignores DB numbers, so
    without the number two apps (or an app and a test run) on one Redis server heard each other."""
    return f"{CHANNEL_PREFIX}:{client.connection_pool.connection_kwargs.get('db', 0)}"


def publish(message: Message) -> None:
    client = get_redis()
    if client is None:
        deliver_locally(message)
        return
    _publish_to_redis(client, [message])


def publish_many(messages: list[Message]) -> None:
    """Publish the messages of one commit, in order, as ONE Redis message: a transaction that notifies
    1,000 people is one publish, and each worker decodes and dispatches it once (1,000 publishes cost
    every worker 1,000 reads, decodes and loop hops, a third of its time in a fan-out)."""
    client = get_redis()
    if client is None or len(messages) == 1:
        for message in messages:
            publish(message)
        return
    _publish_to_redis(client, messages)


def _publish_to_redis(client: Any, messages: list[Message]) -> None:
    try:
        client.publish(channel(client), json.dumps(messages, default=str))
    except Exception:
        # A lost live update is repaired by the next page load; the committed change is not lost.
        logger.warning("could not publish to Redis; delivering on this worker only", exc_info=True)
        deliver_locally_many(messages)


def subscribe(subscriber: Subscriber) -> None:
    """Receive every batch of messages on the calling event loop (call from the app's loop)."""
    _subscribers.append((asyncio.get_running_loop(), subscriber))


def deliver_locally(message: Message) -> None:
    deliver_locally_many([message])


def deliver_locally_many(messages: list[Message]) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for loop, subscriber in list(_subscribers):
        if loop.is_closed():
            continue
        if loop is running:
            # Already on that loop (the Redis relay): a task, not a thread-safe hop through the self-pipe.
            task = loop.create_task(subscriber(messages))
            _deliveries.add(task)
            task.add_done_callback(_deliveries.discard)
        else:
            asyncio.run_coroutine_threadsafe(subscriber(messages), loop)


async def relay_from_redis() -> None:
    """Forward messages published by any worker to this worker's subscribers."""
    import redis.asyncio as aioredis  # noqa: PLC0415  only needed when Redis is configured

    client = get_redis()
    if client is None:
        return
    # No read timeout: a subscriber waits for messages indefinitely. With the publishing client's 2 s
    # timeout, a quiet channel looked like a lost connection every 2 s, and messages published
    # during each reconnect were dropped.
    options = {**client.connection_pool.connection_kwargs, "socket_timeout": None}
    connection = aioredis.Redis(connection_pool=aioredis.ConnectionPool(**options))
    while True:
        try:
            async with connection.pubsub() as pubsub:
                await pubsub.subscribe(channel(client))
                async for item in pubsub.listen():
                    if item.get("type") == "message":
                        messages = json.loads(item["data"])
                        # A worker of the previous release publishes one message per publish.
                        deliver_locally_many([messages] if isinstance(messages, dict) else messages)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("Redis pub/sub connection lost; reconnecting", exc_info=True)
            await asyncio.sleep(1)
