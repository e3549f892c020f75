"""Retries, backoff and the circuit breaker shared by every provider adapter."""

from __future__ import annotations

import httpx
import pytest

from paytime_app.services.providers.base import ProviderRefused, ProviderUnavailable
from paytime_app.services.providers.resilience import (
    DEFAULT_TIMEOUT,
    CircuitBreaker,
    CircuitState,
    RetryPolicy,
    TransientProviderError,
    breaker_for,
    call_provider,
    send,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """Fails with `error` for the first `failures` calls, then answers "ok"."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or TransientProviderError("HTTP 503", status_code=503)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("test", clock=clock)


def test_timeouts_connect_five_read_fifteen_seconds():
    assert DEFAULT_TIMEOUT.connect == 5.0
    assert DEFAULT_TIMEOUT.read == 15.0


def test_call_provider_transient_failures_retried_then_succeeds(breaker, quick_policy, sleeps):
    attempt = Flaky(failures=2)
    assert call_provider("test", "op", attempt, idempotent=True, policy=quick_policy, breaker=breaker) == "ok"
    assert attempt.calls == 3
    assert len(sleeps) == 2
    assert breaker.state is CircuitState.CLOSED


def test_call_provider_attempts_exhausted_raises_unavailable(breaker, quick_policy):
    attempt = Flaky(failures=10)
    with pytest.raises(ProviderUnavailable) as caught:
        call_provider("test", "op", attempt, idempotent=True, policy=quick_policy, breaker=breaker)
    assert caught.value.code == "provider_unavailable"
    assert caught.value.details == {"provider": "test", "reason": "unreachable"}
    assert attempt.calls == 3


def test_call_provider_non_idempotent_not_retried_once_request_sent(breaker, quick_policy):
    attempt = Flaky(failures=1, error=TransientProviderError("read timeout", request_sent=True))
    with pytest.raises(ProviderUnavailable):
        call_provider("test", "op", attempt, idempotent=False, policy=quick_policy, breaker=breaker)
    assert attempt.calls == 1


def test_call_provider_non_idempotent_retried_when_request_never_sent(breaker, quick_policy):
    attempt = Flaky(failures=1, error=TransientProviderError("connect refused", request_sent=False))
    assert call_provider("test", "op", attempt, idempotent=False, policy=quick_policy, breaker=breaker) == "ok"
    assert attempt.calls == 2


def test_call_provider_refusal_not_retried_nor_counted(breaker, quick_policy):
    attempt = Flaky(failures=100, error=ProviderRefused())
    for _ in range(10):
        with pytest.raises(ProviderRefused):
            call_provider("test", "op", attempt, idempotent=True, policy=quick_policy, breaker=breaker)
    assert attempt.calls == 10
    assert breaker.state is CircuitState.CLOSED


def test_retry_delay_exponential_with_jitter_within_bounds():
    policy = RetryPolicy(base_delay=0.25, max_delay=2.0)
    for retry_number, ceiling in [(1, 0.25), (2, 0.5), (3, 1.0), (4, 2.0), (6, 2.0)]:
        delays = {policy.delay(retry_number) for _ in range(200)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered, not lockstep


def test_breaker_five_consecutive_failures_opens_and_fails_fast(breaker, clock, quick_policy):
    attempt = Flaky(failures=100)
    with pytest.raises(ProviderUnavailable):
        call_provider("test", "op", attempt, idempotent=True, policy=quick_policy, breaker=breaker)
    assert breaker.state is CircuitState.CLOSED  # three failures so far
    with pytest.raises(ProviderUnavailable):
        call_provider("test", "op", attempt, idempotent=True, policy=quick_policy, breaker=breaker)
    assert breaker.state is CircuitState.OPEN
    assert attempt.calls == 5  # the fifth failure opened the circuit; no sixth attempt went out

    with pytest.raises(ProviderUnavailable) as caught:
        call_provider("test", "op", attempt, idempotent=True, policy=quick_policy, breaker=breaker)
    assert caught.value.details["reason"] == "circuit_open"
    assert attempt.calls == 5


def test_breaker_success_resets_consecutive_count(breaker):
    for _ in range(4):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED


def test_breaker_open_for_thirty_seconds_then_trial_success_closes(breaker, clock, quick_policy):
    for _ in range(5):
        breaker.record_failure()
    clock.now += 29.9
    with pytest.raises(ProviderUnavailable):
        breaker.before_call()
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN
    assert call_provider("test", "op", Flaky(0), idempotent=True, policy=quick_policy, breaker=breaker) == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_breaker_trial_failure_reopens_for_another_period(breaker, clock, quick_policy):
    for _ in range(5):
        breaker.record_failure()
    clock.now += 30
    attempt = Flaky(failures=100)
    with pytest.raises(ProviderUnavailable):
        call_provider("test", "op", attempt, idempotent=True, policy=quick_policy, breaker=breaker)
    assert attempt.calls == 1  # the trial failed, and the retries then met an open circuit
    assert breaker.state is CircuitState.OPEN
    clock.now += 29
    assert breaker.state is CircuitState.OPEN


def test_breaker_half_open_admits_one_trial_at_a_time(breaker, clock):
    for _ in range(5):
        breaker.record_failure()
    clock.now += 30
    breaker.before_call()  # the trial
    with pytest.raises(ProviderUnavailable):
        breaker.before_call()
    breaker.release_trial()  # the trial got a refusal: no verdict, the next caller may try
    breaker.before_call()


def test_breaker_for_one_per_provider():
    assert breaker_for("stripe") is breaker_for("stripe")
    assert breaker_for("stripe") is not breaker_for("monnify")


@pytest.mark.parametrize(
    ("answer", "request_sent"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("eof"), True),
        (500, True),
        (503, True),
        (429, True),
    ],
)
def test_send_network_errors_5xx_and_429_transient(answer, request_sent):
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)

    with (
        httpx.Client(transport=httpx.MockTransport(handler), base_url="http://provider.test") as client,
        pytest.raises(TransientProviderError) as caught,
    ):
        send(client, "GET", "/x")
    assert caught.value.request_sent is request_sent


@pytest.mark.parametrize("status", [200, 400, 401, 404, 422])
def test_send_other_answers_returned(status):
    with httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(status)), base_url="http://provider.test"
    ) as client:
        assert send(client, "GET", "/x").status_code == status
