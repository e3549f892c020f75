"""Rate limits: the same behaviour on in-memory and Redis storage, plus client IP resolution.

Redis comes from TEST_REDIS_URL (default DB 8 on the local server); under CI=true an unreachable Redis
fails the run instead of skipping. Each test uses its own policy names and keys and deletes only the
Redis keys it made.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine

from paytime_app.services import rate_limits
from paytime_app.services.rate_limits import (
    CODE_ENTRY,
    MONEY_ACTION_PER_USER,
    PASSWORD_RESET_PER_ACCOUNT,
    PASSWORD_RESET_PER_IP,
    SIGN_IN_PER_ACCOUNT,
    SIGN_IN_PER_IP,
    SIGN_UP_PER_IP,
    RateLimited,
    RateLimitPolicy,
    check_rate_limit,
    clear_rate_limit,
    describe_wait,
    enforce_rate_limit,
    ip_rate_limit_key,
    reset_rate_limit_storage,
    resolve_client_ip,
)

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/8")
IN_CI = os.environ.get("CI", "").lower() == "true"
START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class Limits:
    """One test's storage, a unique token for its policy names and keys, and what to clean up."""

    storage: str
    token: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:12]}")
    used: list[tuple[RateLimitPolicy, str]] = field(default_factory=list)

    def policy(self, suffix: str, limit: str) -> RateLimitPolicy:
        return RateLimitPolicy(f"{self.token}_{suffix}", limit)

    def key(self, label: str) -> str:
        return f"{label}-{self.token}@example.com"

    def track(self, policy: RateLimitPolicy, key: str) -> str:
        """For shared policies (module constants), whose storage keys do not carry the token."""
        self.used.append((policy, key))
        return key


def _redis_client() -> redis.Redis:
    return redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


def _redis_keys(client: redis.Redis, token: str) -> list[str]:
    return [key.decode() for key in client.scan_iter(match=f"{rate_limits.KEY_PREFIX}{token}*")]


@pytest.fixture(params=["memory", "redis"])
def limits(request: pytest.FixtureRequest, settings_env: pytest.MonkeyPatch) -> Iterator[Limits]:
    client = None
    if request.param == "redis":
        client = _redis_client()
        try:
            client.ping()
        except redis.RedisError as error:
            client.close()
            if IN_CI:
                pytest.fail(f"CI=true and Redis is not reachable at {TEST_REDIS_URL}: {error}", pytrace=False)
            pytest.skip(f"Redis is not reachable at {TEST_REDIS_URL}: {error}")
        settings_env.setenv("REDIS_URL", TEST_REDIS_URL)
    else:
        settings_env.delenv("REDIS_URL", raising=False)
    reset_rate_limit_storage()
    state = Limits(storage=request.param)
    yield state
    for policy, key in state.used:
        clear_rate_limit(policy, key)
    if client is not None:
        leftovers = _redis_keys(client, state.token)
        if leftovers:
            client.delete(*leftovers)
        client.close()
    reset_rate_limit_storage()


def _exhaust(policy: RateLimitPolicy, key: str) -> None:
    for _ in range(policy.amount):
        enforce_rate_limit(policy, key)


# --- enforcing -------------------------------------------------------------------------------------


def test_enforce_over_limit_raises_rate_limited(limits: Limits) -> None:
    policy = limits.policy("sign_in", "5/15 minutes")
    key = limits.key("ann")
    _exhaust(policy, key)

    with pytest.raises(RateLimited) as caught:
        enforce_rate_limit(policy, key)

    error = caught.value
    assert error.code == "rate_limited"
    assert error.status_code == 429
    assert 0 < error.retry_after_seconds <= 15 * 60
    assert error.details == {"retry_after_seconds": error.retry_after_seconds, "policy": policy.name}
    assert error.to_dict()["code"] == "rate_limited"


def test_enforce_sign_in_per_account_sixth_attempt_refused(limits: Limits) -> None:
    key = limits.track(SIGN_IN_PER_ACCOUNT, limits.key("bob"))
    for _ in range(5):
        enforce_rate_limit(SIGN_IN_PER_ACCOUNT, key)

    with pytest.raises(RateLimited) as caught:
        enforce_rate_limit(SIGN_IN_PER_ACCOUNT, key)

    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after_seconds > 0


def test_enforce_different_keys_independent(limits: Limits) -> None:
    policy = limits.policy("sign_in", "2/15 minutes")
    other_policy = limits.policy("code", "2/15 minutes")
    _exhaust(policy, limits.key("ann"))

    enforce_rate_limit(policy, limits.key("bob"))
    enforce_rate_limit(other_policy, limits.key("ann"))
    with pytest.raises(RateLimited):
        enforce_rate_limit(policy, limits.key("ann"))


def test_enforce_key_case_and_spaces_share_counter(limits: Limits) -> None:
    policy = limits.policy("sign_in", "2/15 minutes")
    enforce_rate_limit(policy, f"Ann-{limits.token}@Example.COM")
    enforce_rate_limit(policy, f"  ann-{limits.token}@example.com ")

    with pytest.raises(RateLimited):
        enforce_rate_limit(policy, f"ann-{limits.token}@example.com")


def test_enforce_refused_attempts_not_counted(limits: Limits) -> None:
    policy = limits.policy("sign_in", "2/15 minutes")
    key = limits.key("ann")
    with time_machine.travel(START, tick=False) as traveller:
        _exhaust(policy, key)
        for _ in range(10):
            with pytest.raises(RateLimited):
                enforce_rate_limit(policy, key)
        traveller.shift(timedelta(minutes=15, seconds=1))

        enforce_rate_limit(policy, key)


def test_enforce_empty_key_rejected(limits: Limits) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        enforce_rate_limit(limits.policy("sign_in", "2/minute"), "   ")


# --- clearing and checking -------------------------------------------------------------------------


def test_clear_resets_counter(limits: Limits) -> None:
    policy = limits.policy("sign_in", "3/15 minutes")
    key = limits.key("ann")
    _exhaust(policy, key)

    clear_rate_limit(policy, key)

    _exhaust(policy, key)
    with pytest.raises(RateLimited):
        enforce_rate_limit(policy, key)


def test_clear_other_key_untouched(limits: Limits) -> None:
    policy = limits.policy("sign_in", "2/15 minutes")
    _exhaust(policy, limits.key("ann"))

    clear_rate_limit(policy, limits.key("bob"))

    with pytest.raises(RateLimited):
        enforce_rate_limit(policy, limits.key("ann"))


def test_check_does_not_consume(limits: Limits) -> None:
    policy = limits.policy("code", "2/15 minutes")
    key = limits.key("ann")
    for _ in range(5):
        assert check_rate_limit(policy, key)

    _exhaust(policy, key)

    assert not check_rate_limit(policy, key)


# --- time ------------------------------------------------------------------------------------------


def test_message_says_wait_in_words(limits: Limits) -> None:
    policy = limits.policy("sign_in", "5/15 minutes")
    key = limits.key("ann")
    with time_machine.travel(START, tick=False) as traveller:
        _exhaust(policy, key)
        with pytest.raises(RateLimited) as caught:
            enforce_rate_limit(policy, key)
        assert caught.value.retry_after_seconds == 900
        assert caught.value.message == "Too many attempts. Try again in 15 minutes."

        traveller.shift(timedelta(minutes=3, seconds=20))
        with pytest.raises(RateLimited) as caught:
            enforce_rate_limit(policy, key)
        assert caught.value.retry_after_seconds == 700
        assert caught.value.message == "Too many attempts. Try again in 12 minutes."

        traveller.shift(timedelta(minutes=11, seconds=35))
        with pytest.raises(RateLimited) as caught:
            enforce_rate_limit(policy, key)
        assert caught.value.message == "Too many attempts. Try again in 5 seconds."


def test_enforce_after_window_allowed_again(limits: Limits) -> None:
    policy = limits.policy("reset", "3/hour")
    key = limits.key("ann")
    with time_machine.travel(START, tick=False) as traveller:
        _exhaust(policy, key)
        traveller.shift(timedelta(minutes=59, seconds=59))
        with pytest.raises(RateLimited):
            enforce_rate_limit(policy, key)

        traveller.shift(timedelta(seconds=2))

        _exhaust(policy, key)


def test_enforce_moving_window_frees_oldest_attempts_first(limits: Limits) -> None:
    # A fixed window would allow a fresh budget at 12:15 regardless of the 12:10 attempts.
    policy = limits.policy("sign_in", "5/15 minutes")
    key = limits.key("ann")
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(3):
            enforce_rate_limit(policy, key)
        traveller.shift(timedelta(minutes=10))
        for _ in range(2):
            enforce_rate_limit(policy, key)
        traveller.shift(timedelta(minutes=5, seconds=1))

        for _ in range(3):
            enforce_rate_limit(policy, key)
        with pytest.raises(RateLimited) as caught:
            enforce_rate_limit(policy, key)

        # The oldest attempt still in the window is 12:10's; it ages out at 12:25.
        assert caught.value.retry_after_seconds == 10 * 60 - 1


# --- storage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("limits", ["redis"], indirect=True)
def test_redis_keys_prefixed_and_hashed(limits: Limits) -> None:
    policy = limits.policy("sign_in", "5/15 minutes")
    enforce_rate_limit(policy, limits.key("Ann"))

    client = _redis_client()
    try:
        keys = _redis_keys(client, limits.token)
    finally:
        client.close()

    assert len(keys) == 1
    assert keys[0].startswith(f"paytime:rl:{policy.name}/")
    assert "example.com" not in keys[0]
    assert "ann" not in keys[0].lower()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_enforce_redis_unreachable_falls_back_to_memory(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("REDIS_URL", "redis://127.0.0.1:1/8")  # nothing listens on port 1
    reset_rate_limit_storage()
    policy = RateLimitPolicy(f"t{uuid.uuid4().hex[:12]}_sign_in", "2/15 minutes")
    handler = _Records()
    rate_limits.logger.addHandler(handler)
    previous_level = rate_limits.logger.level
    rate_limits.logger.setLevel(logging.WARNING)
    try:
        _exhaust(policy, "ann@example.com")
        with pytest.raises(RateLimited):
            enforce_rate_limit(policy, "ann@example.com")
    finally:
        rate_limits.logger.removeHandler(handler)
        rate_limits.logger.setLevel(previous_level)
        reset_rate_limit_storage()

    assert len(handler.records) == 1  # later calls skip Redis for a while instead of timing out each time
    assert "unreachable" in handler.records[0].getMessage()


def test_reset_storage_drops_memory_counts(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.delenv("REDIS_URL", raising=False)
    reset_rate_limit_storage()
    policy = RateLimitPolicy(f"t{uuid.uuid4().hex[:12]}_sign_in", "1/hour")
    enforce_rate_limit(policy, "ann@example.com")

    reset_rate_limit_storage()

    enforce_rate_limit(policy, "ann@example.com")
    reset_rate_limit_storage()


# --- policies and words ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "amount", "window_seconds"),
    [
        (SIGN_IN_PER_ACCOUNT, 5, 15 * 60),
        (SIGN_IN_PER_IP, 100, 15 * 60),
        (CODE_ENTRY, 5, 15 * 60),
        (SIGN_UP_PER_IP, 10, 3600),
        (PASSWORD_RESET_PER_ACCOUNT, 3, 3600),
        (PASSWORD_RESET_PER_IP, 10, 3600),
        (MONEY_ACTION_PER_USER, 30, 60),
    ],
)
def test_policy_limits_match_design(policy: RateLimitPolicy, amount: int, window_seconds: int) -> None:
    assert (policy.amount, policy.window_seconds) == (amount, window_seconds)


@pytest.mark.parametrize(("name", "limit"), [("sign_in", "lots"), ("Sign In", "5/minute"), ("a/b", "5/minute")])
def test_policy_invalid_rejected(name: str, limit: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  the message comes from `limits` for a bad limit
        RateLimitPolicy(name, limit)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "1 second"),
        (1, "1 second"),
        (45, "45 seconds"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (680, "12 minutes"),
        (3540, "59 minutes"),
        (3541, "1 hour"),
        (3600, "1 hour"),
        (3660, "1 hour and 1 minute"),
        (7500, "2 hours and 5 minutes"),
    ],
)
def test_describe_wait_in_words(seconds: int, words: str) -> None:
    assert describe_wait(seconds) == words


# --- client IP -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted_hops", "expected"),
    [
        pytest.param("198.51.100.9", "6.6.6.6", 0, "198.51.100.9", id="spoofed-header-zero-hops-ignored"),
        pytest.param("198.51.100.9", None, 0, "198.51.100.9", id="no-header"),
        pytest.param("10.0.0.2", "6.6.6.6, 203.0.113.7", 1, "203.0.113.7", id="one-hop-rightmost"),
        pytest.param("10.0.0.2", "203.0.113.7", 1, "203.0.113.7", id="one-hop-single-entry"),
        pytest.param("10.0.0.2", "6.6.6.6, 203.0.113.7, 10.0.0.1", 2, "203.0.113.7", id="two-hops"),
        pytest.param("10.0.0.2", "203.0.113.7", 2, "10.0.0.2", id="two-hops-short-header-uses-peer"),
        pytest.param("10.0.0.2", None, 1, "10.0.0.2", id="hops-without-header-uses-peer"),
        pytest.param("10.0.0.2", "", 1, "10.0.0.2", id="hops-empty-header-uses-peer"),
        pytest.param("10.0.0.2", "not-an-ip", 1, "10.0.0.2", id="garbage"),
        pytest.param("10.0.0.2", "203.0.113.7, <script>", 1, "10.0.0.2", id="garbage-rightmost"),
        pytest.param("10.0.0.2", "203.0.113.7,,", 1, "10.0.0.2", id="empty-entry"),
        pytest.param("10.0.0.2", "999.1.1.1", 1, "10.0.0.2", id="out-of-range"),
        pytest.param("10.0.0.2", "203.0.113.7:51234", 1, "203.0.113.7", id="ipv4-with-port"),
        pytest.param("10.0.0.2", "2001:DB8:0::1", 1, "2001:db8::1", id="ipv6"),
        pytest.param("10.0.0.2", "6.6.6.6, [2001:db8::1]:443", 1, "2001:db8::1", id="ipv6-bracketed-port"),
        pytest.param("2001:db8:0:0::5", "6.6.6.6", 0, "2001:db8::5", id="ipv6-peer"),
        pytest.param("::ffff:203.0.113.7", None, 0, "203.0.113.7", id="ipv4-mapped-peer"),
        pytest.param("testclient", "6.6.6.6", 0, "testclient", id="non-ip-peer-kept"),
        pytest.param(None, "6.6.6.6", 0, "unknown", id="no-peer"),
        pytest.param(None, "6.6.6.6, garbage", 1, "unknown", id="no-peer-garbage-header"),
    ],
)
def test_resolve_client_ip(peer: str | None, forwarded_for: str | None, trusted_hops: int, expected: str) -> None:
    assert resolve_client_ip(peer=peer, forwarded_for=forwarded_for, trusted_hops=trusted_hops) == expected


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("unknown", "unknown"),
    ],
)
def test_ip_rate_limit_key_groups_ipv6_by_64(ip: str, expected: str) -> None:
    assert ip_rate_limit_key(ip) == expected
