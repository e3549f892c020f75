"""Timeouts, retries and a circuit breaker for every outbound call to a payment provider.

An adapter wraps each request in `call_provider(slug, operation, attempt, idempotent=...)`. `attempt`
makes one request and either returns, raises `TransientProviderError` (network trouble, 5xx, 429:
worth another try) or raises a definitive error such as `ProviderRefused` (passed through untouched).

Rules, in the order they apply:

- **Fail fast when the circuit is open.** Each provider slug has one breaker per process. After
  `FAILURE_THRESHOLD` consecutive transient failures (every failed attempt counts, retries included,
  because every attempt is a request the struggling provider had to handle and a user had to wait
  for) it opens for `RESET_TIMEOUT_SECONDS`; calls then raise `ProviderUnavailable` without touching
  the network. After the timeout one trial call is let through (half-open): success closes the
  circuit, failure opens it for another period. Refusals (4xx) are answers, not outages, and leave
  the breaker alone. The breaker is per process on purpose: it protects this worker's latency, and a
  second host learning the same thing a few requests later is harmless.
- **Retry only what is safe to repeat.** A request that never reached the provider (connect error)
  is always safe to send again. One that may have been processed (read timeout, 5xx) is retried only
  when `idempotent=True`: a GET, or a POST carrying an idempotency key or unique reference the
  provider deduplicates on. At most `max_attempts` attempts, exponential backoff with jitter between.
- **Never turn a failure into success.** When attempts run out the call raises `ProviderUnavailable`;
  there is no default value and no fallback result.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import httpx

from paytime_app.services.providers.base import ProviderUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 15.0
DEFAULT_TIMEOUT = httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
FAILURE_THRESHOLD = 5
RESET_TIMEOUT_SECONDS = 30.0


class TransientProviderError(Exception):
    """One attempt failed in a way another attempt might not.

    `request_sent` is False only when the request certainly never reached the provider (the
    connection was not established), which makes a retry safe even for a non-idempotent call.
    """

    def __init__(self, message: str, *, request_sent: bool = True, status_code: int | None = None):
        super().__init__(message)
        self.request_sent = request_sent
        self.status_code = status_code


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, retry_number: int) -> float:
        """Backoff before retry `retry_number` (1-based): exponential, capped, with "equal jitter".

        Half the delay is fixed and half random, so clients that failed together do not retry in
        lockstep, yet no retry follows immediately.
        """
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311  jitter, not a secret


DEFAULT_POLICY = RetryPolicy()


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure breaker with a half-open trial; thread-safe, clock injectable for tests."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        reset_timeout: float = RESET_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> CircuitState:
        with self._lock:
            return self._state()

    def _state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - self._opened_at >= self.reset_timeout:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def before_call(self) -> None:
        """Raise ProviderUnavailable unless a call may go out now."""
        with self._lock:
            state = self._state()
            if state is CircuitState.CLOSED:
                return
            # Half-open admits exactly one trial; everyone else keeps failing fast until it reports.
            if state is CircuitState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return
        raise ProviderUnavailable(provider=self.name, reason="circuit_open")

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.failure_threshold:
                if self._opened_at is None or self._trial_in_flight:
                    logger.warning("provider circuit opened", extra={"provider": self.name})
                self._opened_at = self.clock()
            self._trial_in_flight = False

    def release_trial(self) -> None:
        """The trial call ended without a verdict on the provider's health (e.g. a 4xx refusal)."""
        with self._lock:
            self._trial_in_flight = False

    def reset(self) -> None:
        self.record_success()


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(provider: str) -> CircuitBreaker:
    """The process-wide breaker of one provider slug."""
    with _breakers_lock:
        breaker = _breakers.get(provider)
        if breaker is None:
            breaker = _breakers[provider] = CircuitBreaker(provider)
        return breaker


def reset_breakers() -> None:
    """Close every breaker (tests, and an operator who knows the provider is back)."""
    with _breakers_lock:
        _breakers.clear()


def call_provider(
    provider: str,
    operation: str,
    attempt: Callable[[], T],
    *,
    idempotent: bool,
    policy: RetryPolicy = DEFAULT_POLICY,
    breaker: CircuitBreaker | None = None,
) -> T:
    """Run `attempt` behind the provider's breaker with retries. Raises ProviderUnavailable.

    Any other exception `attempt` raises (ProviderRefused, WebhookRejected, …) propagates at once.
    """
    breaker = breaker or breaker_for(provider)
    last_error: TransientProviderError | None = None
    for attempt_number in range(1, policy.max_attempts + 1):
        breaker.before_call()
        try:
            result = attempt()
        except TransientProviderError as error:
            breaker.record_failure()
            last_error = error
            logger.warning(
                "provider call failed",
                extra={"provider": provider, "operation": operation, "attempt": attempt_number, "error": str(error)},
            )
            if error.request_sent and not idempotent:
                break
            if attempt_number < policy.max_attempts:
                policy.sleep(policy.delay(attempt_number))
            continue
        except BaseException:
            # A refusal or a bug: the provider answered, so its health is unknown, not bad.
            breaker.release_trial()
            raise
        breaker.record_success()
        return result
    # The details reach API clients, so they name the provider and the kind of failure, not our URLs.
    raise ProviderUnavailable(provider=provider, reason="unreachable") from last_error


def send(client: httpx.Client, method: str, url: str, **kwargs: object) -> httpx.Response:
    """One HTTP attempt: transport errors, 5xx and 429 become TransientProviderError; other answers return."""
    try:
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
        raise TransientProviderError(f"{method} {url}: {type(error).__name__}", request_sent=False) from error
    except httpx.TransportError as error:
        raise TransientProviderError(f"{method} {url}: {type(error).__name__}") from error
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientProviderError(f"{method} {url}: HTTP {response.status_code}", status_code=response.status_code)
    return response


def http_client(base_url: str, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT, **kwargs: object) -> httpx.Client:
    """An httpx client with our timeouts; redirects are not followed (an API answer is never a redirect)."""
    return httpx.Client(base_url=base_url, timeout=timeout, follow_redirects=False, **kwargs)  # type: ignore[arg-type]
