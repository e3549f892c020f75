"""argon2id verification time with PayTime's parameters (64 MiB, t=3, p=2) on this machine.

There is no physical limit to compare with: the cost is a security choice. The figure tells how
many sign-ins per second one core can check, and that it stays in the 50-500 ms band OWASP suggests.
"""

import json
import os
import statistics
import time

from paytime_app.services.passwords import HASHER, hash_password, verify_password

SAMPLES = 20


def main() -> None:
    stored = hash_password("correct horse battery staple")
    timings = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        assert verify_password(stored, "correct horse battery staple")
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    print(
        json.dumps(
            {
                "benchmark": "password_hashing",
                "algorithm": "argon2id",
                "memory_kib": HASHER.memory_cost,
                "time_cost": HASHER.time_cost,
                "parallelism": HASHER.parallelism,
                "verify_p50_ms": round(statistics.median(timings), 1),
                "verify_p95_ms": round(timings[int(0.95 * (SAMPLES - 1))], 1),
                "verifications_per_second_per_core": round(1000 / statistics.median(timings), 1),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
