"""Small helpers shared by tests."""

import socket
import threading
from collections.abc import Callable

from paytime_app.errors import DomainError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_at_once(count: int, work: Callable[[], object]) -> list:
    """Start `count` threads together on `work`; each result is its return value or the refusal's code."""
    barrier = threading.Barrier(count)
    results: list = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            outcome = work()
        except DomainError as error:
            outcome = error.code
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == count, "a worker did not finish"
    return results
