"""How big each proof runs: `fast` (part of `make test`), `ci` (reduced `make prove`), `full`.

Tests marked `prove` read `PROVE_SIZE` (default `full`); unmarked tests in
tests/prove always run at `fast`. Every loop in the suite is bounded twice:
by a count from here and by a wall-clock deadline, so a slow machine makes a
run smaller (and the report says so), never endless.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tests.prove.pumping_day import DayPlan


@dataclass(frozen=True)
class Size:
    name: str
    # Brute force: simulated hours the attacker guesses for, and a cap on operations.
    brute_hours: int
    brute_max_ops: int
    brute_parallel_rounds: int
    # SMS pumping: send_otp requests in-process (simulated hours), and over HTTP (real processes).
    pump_requests: int
    pump_hours: int
    pump_http_requests: int
    # Hypothesis stateful test.
    sm_examples: int
    sm_steps: int
    # Schemathesis: examples per operation and generation mode.
    fuzz_examples: int
    # Load: concurrent virtual users and seconds.
    load_users: int
    load_seconds: float
    # Wall-clock cap of one scenario, seconds.
    deadline: float
    # SMS pumping, a simulated day of real users and one attack (tests/prove/pumping_day.py).
    day: DayPlan


SIZES = {
    "fast": Size("fast", brute_hours=2, brute_max_ops=2_000, brute_parallel_rounds=0,
                 pump_requests=300, pump_hours=1, pump_http_requests=0,
                 sm_examples=12, sm_steps=25, fuzz_examples=8,
                 load_users=0, load_seconds=0, deadline=40,
                 # Small: the cap and the free allowances scaled down together, so 5% of the cap
                 # still means something; one burst, a control of two hours.
                 day=DayPlan(hours=3, real_users=45, cap=120, burst_every_hours=4, burst_requests=140,
                             burst_rate=4, spread_requests=150, slow_ips=2, slow_interval=150,
                             overrides={"guard_range_free_per_hour": 5, "guard_client_free_per_hour": 3,
                                        "guard_country_free_per_hour": 2})),
    "ci": Size("ci", brute_hours=24, brute_max_ops=20_000, brute_parallel_rounds=2,
               pump_requests=2_000, pump_hours=3, pump_http_requests=600,
               sm_examples=40, sm_steps=40, fuzz_examples=25,
               load_users=12, load_seconds=20, deadline=150,
               day=DayPlan(hours=12, real_users=600, cap=1000, burst_every_hours=3, burst_requests=1100,
                           burst_rate=10, spread_requests=2500, slow_ips=5, slow_interval=180)),
    "full": Size("full", brute_hours=24, brute_max_ops=40_000, brute_parallel_rounds=4,
                 pump_requests=5_000, pump_hours=6, pump_http_requests=2_000,
                 sm_examples=120, sm_steps=50, fuzz_examples=80,
                 load_users=32, load_seconds=60, deadline=300,
                 day=DayPlan(hours=24, real_users=1500, cap=1000, burst_every_hours=3, burst_requests=1100,
                             burst_rate=10, spread_requests=6000, slow_ips=5, slow_interval=180)),
}  # fmt: skip


def prove_size() -> Size:
    name = os.environ.get("PROVE_SIZE", "full").strip().lower() or "full"
    if name not in SIZES:
        raise ValueError(f"PROVE_SIZE must be one of {', '.join(SIZES)}, got {name!r}")
    return SIZES[name]


FAST = SIZES["fast"]
