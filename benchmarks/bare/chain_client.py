"""Starts bare chains and waits for them in the database; prints one JSON object.

python -m benchmarks.bare.chain_client --burst 300 --singles 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from benchmarks.bare.chain import STEPS, start_chain
from benchmarks.bare.models import ChainStep

POLL_SECONDS = 0.002
WAIT_LIMIT = 120.0


def finished(burst: str) -> int:
    return ChainStep._default_manager.filter(burst=burst, position=STEPS).count()


def one_chain_latency() -> float:
    """Seconds from publishing a chain to seeing its last row, the load otherwise idle."""
    burst = str(uuid.uuid4())
    started = time.perf_counter()
    start_chain(burst, 0)
    deadline = time.monotonic() + WAIT_LIMIT
    while not finished(burst) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def burst_rate(count: int) -> dict[str, float]:
    """Chains completed per second when `count` are started at once."""
    burst = str(uuid.uuid4())
    started_wall = time.time()
    for number in range(count):
        start_chain(burst, number)
    deadline = time.monotonic() + WAIT_LIMIT
    done = 0
    while time.monotonic() < deadline:
        done = finished(burst)
        if done >= count:
            break
        time.sleep(0.05)
    last = ChainStep._default_manager.filter(burst=burst, position=STEPS).order_by("-at").first()
    seconds = (last.at.timestamp() - started_wall) if last else float("nan")
    return {"completed": done, "seconds": seconds, "per_second": done / seconds if last else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--singles", type=int, default=5)
    args = parser.parse_args()
    one_chain_latency()  # warm-up: connections and the worker's first task
    singles = [one_chain_latency() for _ in range(max(1, min(args.singles, 50)))]
    result = {
        "single_seconds": singles,
        "single_median_seconds": statistics.median(singles),
        "burst": burst_rate(max(1, min(args.burst, 5000))),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
