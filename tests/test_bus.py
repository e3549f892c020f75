import asyncio
import contextlib
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis
from sqlmodel import select

from paytime_app import bus
from paytime_app.db import unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.users import User
from paytime_app.redis_client import get_redis
from paytime_app.services.users import create_user
from paytime_app.settings import get_settings

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/8")
WAIT_SECONDS = 5.0
QUIET_SECONDS = 0.2


class KeptRefusal(DomainError):
    code = "kept_refusal"
    keeps_changes = True


@pytest.fixture(autouse=True)
def _own_subscribers():
    """Subscribers added by a test are dropped afterwards; the module list is shared by the process."""
    saved = list(bus._subscribers)
    yield
    bus._subscribers[:] = saved


@pytest.fixture
def local_bus(monkeypatch):
    """No Redis: messages go straight to this process's subscribers."""
    monkeypatch.setattr(bus, "get_redis", lambda: None)


def with_collector(transaction: Callable[[], None], *, expect: int) -> list[dict]:
    """Subscribe on a running loop, run `transaction` in a thread, and return what was delivered.

    Waits for `expect` messages (or a short quiet spell when none are expected).
    """

    async def scenario() -> list[dict]:
        received: list[dict] = []
        arrived = asyncio.Event()

        async def collect(messages: list[dict]) -> None:
            received.extend(messages)
            if len(received) >= expect:
                arrived.set()

        bus.subscribe(collect)
        await asyncio.to_thread(transaction)
        if expect:
            await asyncio.wait_for(arrived.wait(), WAIT_SECONDS)
        await asyncio.sleep(QUIET_SECONDS)  # anything extra would show up here
        return received

    return asyncio.run(scenario())


def users() -> list[str]:
    with unit_of_work() as session:
        return [user.email for user in session.exec(select(User)).all()]


def test_publish_after_commit_delivers_only_after_commit(engine, local_bus):
    before_commit: list[int] = []
    delivered_so_far: list[dict] = []

    def transaction() -> None:
        with unit_of_work() as session:
            user = create_user(session=session, email="ada@example.com", display_name="Ada", password=None)
            bus.publish_after_commit(session, "users.created", user_id=str(user.id))
            threading.Event().wait(QUIET_SECONDS)  # give the loop every chance to receive it early
            before_commit.append(len(delivered_so_far))

    async def scenario() -> list[dict]:
        arrived = asyncio.Event()

        async def collect(messages: list[dict]) -> None:
            delivered_so_far.extend(messages)
            arrived.set()

        bus.subscribe(collect)
        await asyncio.to_thread(transaction)
        await asyncio.wait_for(arrived.wait(), WAIT_SECONDS)
        await asyncio.sleep(QUIET_SECONDS)
        return delivered_so_far

    received = asyncio.run(scenario())
    assert before_commit == [0], "nothing is sent while the transaction is open"
    assert [message["topic"] for message in received] == ["users.created"]
    assert users() == ["ada@example.com"]


def test_publish_after_commit_rolled_back_never_delivered(engine, local_bus):
    def transaction() -> None:
        with pytest.raises(RuntimeError), unit_of_work() as session:
            create_user(session=session, email="ada@example.com", display_name="Ada", password=None)
            bus.publish_after_commit(session, "users.created", email="ada@example.com")
            raise RuntimeError("the request failed")

    assert with_collector(transaction, expect=0) == []
    assert users() == []


def test_publish_after_commit_refusal_that_keeps_changes_delivers(engine, local_bus):
    def transaction() -> None:
        with pytest.raises(KeptRefusal), unit_of_work() as session:
            create_user(session=session, email="ada@example.com", display_name="Ada", password=None)
            bus.publish_after_commit(session, "attempt.counted")
            raise KeptRefusal()

    assert with_collector(transaction, expect=1) == [{"topic": "attempt.counted"}]
    assert users() == ["ada@example.com"], "the refusal committed what came before it"


def test_publish_after_commit_several_messages_in_order_once(engine, local_bus):
    def transaction() -> None:
        with unit_of_work() as session:
            create_user(session=session, email="ada@example.com", display_name="Ada", password=None)
            for number in range(3):
                bus.publish_after_commit(session, "count", number=number)

    received = with_collector(transaction, expect=3)
    assert [message["number"] for message in received] == [0, 1, 2]


def test_publish_after_commit_reused_session_sends_each_message_once(engine, local_bus):
    def transactions() -> None:
        with unit_of_work() as session:
            create_user(session=session, email="ada@example.com", display_name="Ada", password=None)
            bus.publish_after_commit(session, "first")
            session.commit()
            bus.publish_after_commit(session, "dropped")
            create_user(session=session, email="ben@example.com", display_name="Ben", password=None)
            session.rollback()
            create_user(session=session, email="cy@example.com", display_name="Cy", password=None)
            bus.publish_after_commit(session, "second")

    received = with_collector(transactions, expect=2)
    assert [message["topic"] for message in received] == ["first", "second"]
    assert sorted(users()) == ["ada@example.com", "cy@example.com"]


def test_deliver_locally_every_subscriber_and_skips_closed_loops(local_bus):
    async def stale(messages: list[dict]) -> None:
        raise AssertionError("a subscriber on a closed loop must not be called")

    async def subscribe_and_close() -> None:
        bus.subscribe(stale)

    asyncio.run(subscribe_and_close())  # that loop is closed now

    async def scenario() -> list[str]:
        received: list[str] = []
        done = asyncio.Event()

        async def first(messages: list[dict]) -> None:
            received.append("first")

        async def second(messages: list[dict]) -> None:
            received.append("second")
            done.set()

        bus.subscribe(first)
        bus.subscribe(second)
        bus.deliver_locally({"topic": "hello"})
        await asyncio.wait_for(done.wait(), WAIT_SECONDS)
        await asyncio.sleep(QUIET_SECONDS)
        return received

    assert sorted(asyncio.run(scenario())) == ["first", "second"]


@pytest.fixture
def redis_bus(settings_env):
    settings_env.setenv("REDIS_URL", REDIS_URL)
    get_settings.cache_clear()
    get_redis.cache_clear()
    client = get_redis()
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {error}")
    yield client
    client.close()
    get_redis.cache_clear()


def subscribers(client: redis.Redis) -> int:
    """How many connections (this process's relay among them) listen on the bus channel of `client`'s DB."""
    return dict(client.pubsub_numsub(bus.channel(client))).get(bus.channel(client).encode(), 0)


@contextlib.asynccontextmanager
async def running_relay(client: redis.Redis) -> AsyncIterator[int]:
    """The Redis relay of this process, running and subscribed; yields the subscriber count before it."""
    baseline = subscribers(client)
    relay = asyncio.create_task(bus.relay_from_redis())
    try:
        for _ in range(100):  # until the relay has subscribed
            if subscribers(client) > baseline:
                break
            await asyncio.sleep(0.05)
        yield baseline
    finally:
        relay.cancel()
        with pytest.raises(asyncio.CancelledError):
            await relay


def test_publish_after_commit_through_redis_reaches_relay(engine, redis_bus):
    marker = uuid.uuid4().hex  # other processes may share the channel

    def transactions() -> None:
        with pytest.raises(RuntimeError), unit_of_work() as session:
            create_user(session=session, email="ada@example.com", display_name="Ada", password=None)
            bus.publish_after_commit(session, "redis.test", marker=marker, committed=False)
            raise RuntimeError("rolled back")
        with unit_of_work() as session:
            create_user(session=session, email="ben@example.com", display_name="Ben", password=None)
            for number in range(3):  # one commit's messages go in one publish, in order
                bus.publish_after_commit(session, "redis.test", marker=marker, committed=True, number=number)

    batches: list[list[dict]] = []

    async def scenario() -> list[dict]:
        received: list[dict] = []
        arrived = asyncio.Event()

        async def collect(messages: list[dict]) -> None:
            mine = [message for message in messages if message.get("marker") == marker]
            if mine:
                batches.append(mine)
                received.extend(mine)
                arrived.set()

        bus.subscribe(collect)
        async with running_relay(redis_bus):
            await asyncio.to_thread(transactions)
            await asyncio.wait_for(arrived.wait(), WAIT_SECONDS)
            await asyncio.sleep(QUIET_SECONDS)
        return received

    assert asyncio.run(scenario()) == [
        {"topic": "redis.test", "marker": marker, "committed": True, "number": number} for number in range(3)
    ]
    assert len(batches) == 1, "one commit is one Redis message, decoded and dispatched once per worker"


def test_relay_keeps_listening_on_a_quiet_channel(redis_bus):
    """A message published after a quiet spell longer than the client's socket timeout still arrives."""
    marker = uuid.uuid4().hex

    async def scenario() -> list[dict]:
        received: list[dict] = []
        arrived = asyncio.Event()

        async def collect(messages: list[dict]) -> None:
            mine = [message for message in messages if message.get("marker") == marker]
            received.extend(mine)
            if mine:
                arrived.set()

        bus.subscribe(collect)
        async with running_relay(redis_bus) as baseline:
            quiet = get_redis().connection_pool.connection_kwargs["socket_timeout"] + 0.5
            await asyncio.sleep(quiet)
            # The relay is still subscribed (it did not drop the connection while the channel was quiet)…
            assert subscribers(redis_bus) > baseline
            bus.publish({"topic": "redis.quiet", "marker": marker})
            await asyncio.wait_for(arrived.wait(), WAIT_SECONDS)
        return received

    assert asyncio.run(scenario()) == [{"topic": "redis.quiet", "marker": marker}]


def test_released_savepoint_waits_for_the_real_commit_and_a_rolled_back_one_drops_its_messages(engine, monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(bus, "publish_many", lambda messages: sent.extend(m["topic"] for m in messages))
    with unit_of_work() as session:
        bus.publish_after_commit(session, "before")
        with session.begin_nested():
            bus.publish_after_commit(session, "kept")
        assert sent == []  # released savepoint: not committed yet
        with pytest.raises(RuntimeError), session.begin_nested():
            bus.publish_after_commit(session, "dropped")
            raise RuntimeError("savepoint rolled back")
        assert sent == []
    assert sent == ["before", "kept"]
    sent.clear()
    with pytest.raises(RuntimeError), unit_of_work() as session:
        with session.begin_nested():
            bus.publish_after_commit(session, "never")
        raise RuntimeError("whole transaction rolled back")
    assert sent == []


def test_relay_takes_the_single_message_a_worker_of_the_previous_release_publishes(redis_bus):
    """During a rolling deploy, workers that still publish one message per publish are understood."""
    marker = uuid.uuid4().hex

    async def scenario() -> list[dict]:
        received: list[dict] = []
        arrived = asyncio.Event()

        async def collect(messages: list[dict]) -> None:
            received.extend(message for message in messages if message.get("marker") == marker)
            if received:
                arrived.set()

        bus.subscribe(collect)
        async with running_relay(redis_bus):
            redis_bus.publish(bus.channel(redis_bus), json.dumps({"topic": "redis.old", "marker": marker}))
            await asyncio.wait_for(arrived.wait(), WAIT_SECONDS)
        return received

    assert asyncio.run(scenario()) == [{"topic": "redis.old", "marker": marker}]


def test_relay_ignores_messages_of_another_redis_db(redis_bus):
    """Redis pub/sub ignores DB numbers: an app (or test run) on another DB of the same server publishes
    on its own channel, which this worker's relay does not hear."""
    marker = uuid.uuid4().hex
    own_db = redis_bus.connection_pool.connection_kwargs.get("db", 0)
    other = redis.Redis(**{**redis_bus.connection_pool.connection_kwargs, "db": (own_db + 1) % 16})

    async def scenario() -> list[dict]:
        received: list[dict] = []
        arrived = asyncio.Event()

        async def collect(messages: list[dict]) -> None:
            received.extend(message for message in messages if message.get("marker") == marker)
            if any(message["topic"] == "redis.own" for message in received):
                arrived.set()

        bus.subscribe(collect)
        try:
            async with running_relay(redis_bus):
                other.publish(bus.channel(other), json.dumps([{"topic": "redis.foreign", "marker": marker}]))
                bus.publish({"topic": "redis.own", "marker": marker})  # after the foreign one, on the same server
                await asyncio.wait_for(arrived.wait(), WAIT_SECONDS)
                await asyncio.sleep(QUIET_SECONDS)
        finally:
            other.close()
        return received

    assert asyncio.run(scenario()) == [{"topic": "redis.own", "marker": marker}]
