"""Rate limits on sign-in, codes, sign-up, password reset and money actions, built on `limits`.

Design overview
- Policies are named module constants (`SIGN_IN_PER_ACCOUNT`, ...). Callers count one attempt with
  `enforce_rate_limit(policy, key)`, which raises `RateLimited` (code `rate_limited`, HTTP 429) with the
  wait in seconds and in words. `check_rate_limit` peeks without counting; `clear_rate_limit` forgets a
  key's attempts (per-account sign-in counters after a successful sign-in).
- Strategy: moving window. A fixed window lets a client spend its whole budget at the end of one window
  and again at the start of the next (10 password guesses in a few seconds under a "5 per 15 minutes"
  limit); a moving window counts exactly the attempts of the last N minutes and tells us when the oldest
  one ages out, which is the honest "try again in" we show. It keeps at most `limit` timestamps per key
  (a list in Redis); our limits are small (5-30), so that is cheap. Refused attempts are not recorded,
  so hammering does not extend the lockout and waiting the stated time really lets the user back in.
- Storage: Redis (`REDIS_URL`, PayTime's DB number) so every worker and host shares one count;
  in-process memory when Redis is not configured (the embedded single-process mode).
- Keys are normalised (trimmed, lower-case) and HMAC-SHA256'd, then stored under `paytime:rl:`.
- The limiter and the window timestamps use wall-clock `time.time()` of the app server (both storages),
  so hosts need NTP; seconds of skew do not matter against minute-long windows.

These calls do a blocking Redis round trip (sub-millisecond normally, at most the 1 s socket timeout):
from async Reflex handlers call the service that uses them through `rx.run_in_thread`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import redis
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from paytime_app.errors import DomainError
from paytime_app.redis_client import redis_url_with_db
from paytime_app.settings import get_settings

logger = logging.getLogger("paytime.rate_limits")

KEY_PREFIX = "paytime:rl:"
# After a Redis failure, skip Redis for this long so each request does not pay the connect timeout.
REDIS_RETRY_SECONDS = 30.0
REDIS_SOCKET_TIMEOUT_SECONDS = 1.0

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class RateLimitPolicy:
    """A named limit such as "5/15 minutes"; the name is part of the storage key."""

    name: str
    limit: str

    def __post_init__(self) -> None:
        if not _NAME_PATTERN.match(self.name):
            raise ValueError(f"rate limit policy name must be snake_case: {self.name!r}")
        _ = self.item  # parse now, so a bad limit string fails at import rather than at the first sign-in

    @cached_property
    def item(self) -> RateLimitItem:
        parsed = parse(self.limit)  # raises ValueError on a malformed limit
        return type(parsed)(parsed.amount, parsed.multiples, namespace=self.name)

    @property
    def amount(self) -> int:
        return self.item.amount

    @property
    def window_seconds(self) -> int:
        return self.item.get_expiry()


SIGN_IN_PER_ACCOUNT = RateLimitPolicy("sign_in_per_account", "5/15 minutes")
SIGN_IN_PER_IP = RateLimitPolicy("sign_in_per_ip", "100/15 minutes")  # offices share an address behind NAT
CODE_ENTRY = RateLimitPolicy("code_entry", "5/15 minutes")  # keyed by user id or challenge id
DEVICE_CODES_PER_ACCOUNT = RateLimitPolicy("device_codes_per_account", "10/hour")
SIGN_UP_PER_IP = RateLimitPolicy("sign_up_per_ip", "10/hour")
PASSWORD_RESET_PER_ACCOUNT = RateLimitPolicy("password_reset_per_account", "3/hour")
PASSWORD_RESET_PER_IP = RateLimitPolicy("password_reset_per_ip", "10/hour")
MONEY_ACTION_PER_USER = RateLimitPolicy("money_action_per_user", "30/minute")
# Friend requests and people search: against spam and against walking the user list by name.
FRIEND_REQUESTS_PER_USER = RateLimitPolicy("friend_requests_per_user", "30/hour")
PEOPLE_SEARCH_PER_USER = RateLimitPolicy("people_search_per_user", "60/10 minutes")
# Each IOU notifies the lender: against flooding a friend with debts.
IOUS_OPENED_PER_USER = RateLimitPolicy("ious_opened_per_user", "30/hour")


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def describe_wait(seconds: int) -> str:
    """A wait in words, rounded up so that waiting that long is always enough: "12 minutes"."""
    seconds = max(1, seconds)
    if seconds < 60:
        return _plural(seconds, "second")
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return _plural(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    if not minutes:
        return _plural(hours, "hour")
    return f"{_plural(hours, 'hour')} and {_plural(minutes, 'minute')}"


class RateLimited(DomainError):
    code = "rate_limited"
    status_code = 429
    default_message = "Too many attempts. Please wait and try again."

    def __init__(self, *, retry_after_seconds: int, policy: str) -> None:
        self.retry_after_seconds = max(1, int(retry_after_seconds))
        super().__init__(
            f"Too many attempts. Try again in {describe_wait(self.retry_after_seconds)}.",
            retry_after_seconds=self.retry_after_seconds,
            policy=policy,
        )


@dataclass
class _Limiters:
    source: str | None  # the Redis URL these were built for, None for memory only
    primary: MovingWindowRateLimiter
    fallback: MovingWindowRateLimiter | None = None
    redis_down_until: float = 0.0


_limiters: _Limiters | None = None
_lock = threading.Lock()


def _configured_redis_url() -> str | None:
    settings = get_settings()
    if not settings.redis_url:
        return None
    return redis_url_with_db(settings.redis_url, settings.redis_db)


def _build(source: str | None) -> _Limiters:
    memory = MovingWindowRateLimiter(MemoryStorage())
    if source is None:
        return _Limiters(source=None, primary=memory)
    storage = RedisStorage(
        source,
        key_prefix=KEY_PREFIX.rstrip(":"),  # RedisStorage joins prefix and key with ":"
        wrap_exceptions=True,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
    )
    return _Limiters(source=source, primary=MovingWindowRateLimiter(storage), fallback=memory)


def _current() -> _Limiters:
    global _limiters
    source = _configured_redis_url()
    limiters = _limiters
    if limiters is not None and limiters.source == source:
        return limiters
    with _lock:
        if _limiters is None or _limiters.source != source:
            _limiters = _build(source)
        return _limiters


def reset_rate_limit_storage() -> None:
    """Drop the cached storage (and every in-memory count); the next call rebuilds it from settings."""
    global _limiters
    with _lock:
        old, _limiters = _limiters, None
    if old is not None and isinstance(old.primary.storage, RedisStorage):
        client = old.primary.storage.storage
        if isinstance(client, redis.Redis):
            client.close()


def _run(operation: Callable[[MovingWindowRateLimiter], _T]) -> _T:
    limiters = _current()
    if limiters.fallback is None:
        return operation(limiters.primary)
    if time.monotonic() < limiters.redis_down_until:
        return operation(limiters.fallback)
    try:
        return operation(limiters.primary)
    except (StorageError, redis.RedisError) as error:
        # Fail open to per-process counters rather than closed: if a Redis blip made every sign-in
        # fail, one outage would lock every user out. In-memory counts still stop brute force on each
        # worker (limit x workers at worst) until Redis answers again.
        limiters.redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        cause = error.storage_error if isinstance(error, StorageError) else error
        logger.warning(
            "Rate limit storage (Redis) unreachable; counting in memory for %ds: %s",
            REDIS_RETRY_SECONDS,
            cause,
        )
        return operation(limiters.fallback)


def _identifier(key: str) -> str:
    normalised = key.strip().lower()
    if not normalised:
        raise ValueError("rate limit key must not be empty")
    # Keyed hash: a Redis dump shows neither emails nor IPs, and cannot be matched against a list of
    # known emails without the secret key. Rotating SECRET_KEY merely restarts the counters.
    secret = get_settings().secret_key.encode()
    return hmac.new(secret, normalised.encode(), hashlib.sha256).hexdigest()[:32]


def enforce_rate_limit(policy: RateLimitPolicy, key: str) -> None:
    """Count one attempt for `key` under `policy`. Raises RateLimited when the limit is used up."""
    item, identifier = policy.item, _identifier(key)
    if _run(lambda limiter: limiter.hit(item, identifier)):
        return
    stats = _run(lambda limiter: limiter.get_window_stats(item, identifier))
    # The oldest attempt in the window frees a slot at reset_time; clamp against the window for the
    # race where it aged out between the refused hit and this read.
    retry_after = min(policy.window_seconds, math.ceil(stats.reset_time - time.time()))
    raise RateLimited(retry_after_seconds=max(1, retry_after), policy=policy.name)


def check_rate_limit(policy: RateLimitPolicy, key: str) -> bool:
    """True when one more attempt for `key` would be allowed now; counts nothing."""
    item, identifier = policy.item, _identifier(key)
    return _run(lambda limiter: limiter.test(item, identifier))


def clear_rate_limit(policy: RateLimitPolicy, key: str) -> None:
    """Forget the attempts counted for `key` under `policy`.

    After a successful sign-in, clear SIGN_IN_PER_ACCOUNT (and CODE_ENTRY after a correct code) so
    earlier typos do not count against the user's next sign-in. Never clear the per-IP counters on
    success: one valid account of their own would let an attacker reset the counter they spray under.
    """
    item, identifier = policy.item, _identifier(key)
    _run(lambda limiter: limiter.clear(item, identifier))
    limiters = _current()
    if limiters.fallback is not None:
        # Attempts counted in memory during a Redis outage would otherwise come back on the next one.
        limiters.fallback.clear(item, identifier)


def _parse_ip(value: str | None) -> str | None:
    """A normalised IP address from a header or socket value, or None if it is not one."""
    if not value:
        return None
    candidate = value.strip().strip('"')
    if candidate.startswith("["):  # "[2001:db8::1]:443"
        candidate = candidate[1:].partition("]")[0]
    elif candidate.count(":") == 1:  # "203.0.113.7:51234"; a bare IPv6 address has two or more
        candidate = candidate.partition(":")[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def resolve_client_ip(*, peer: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The client's IP address for rate limits and audit, trusting exactly `trusted_hops` proxies.

    X-Forwarded-For is written by the client first and appended to by each proxy, so only the
    entries added by our own proxies can be believed: with N trusted hops the client is the Nth entry
    from the right. With 0 hops the header is entirely the client's word and is ignored (a spoofed
    header would otherwise give an attacker a fresh per-IP counter on every request). Join repeated
    X-Forwarded-For headers with "," before calling. Falls back to the socket peer when the header is
    missing, too short or not an IP address; "unknown" when there is no peer either.
    """
    peer_ip = _parse_ip(peer) or (peer.strip() if peer and peer.strip() else "unknown")
    if trusted_hops <= 0 or not forwarded_for:
        return peer_ip
    entries = [entry.strip() for entry in forwarded_for.split(",")]
    if len(entries) < trusted_hops:
        return peer_ip
    return _parse_ip(entries[-trusted_hops]) or peer_ip


def ip_rate_limit_key(ip: str) -> str:
    """The key to rate-limit an address by: IPv6 by its /64 (one subscriber's usual allocation), else the IP."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
