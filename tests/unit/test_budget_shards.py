"""The send guard's hard budgets: never past the cap, and a bounded read whatever the cap."""

from __future__ import annotations

import random

import pytest

from otplogin.guard.counters import MAX_SHARDS_READ, Budget, shards_for

NOW = 1_800_000_000.0


@pytest.mark.parametrize("cap", [10, 14_400, 1_000_000, 10_000_000])
def test_a_send_reads_a_bounded_number_of_budget_shards(cap):
    budget = Budget("pool:new:CD", cap)
    read = budget.read_paths(NOW, random.Random(cap))
    assert len(read) == min(budget.shards, MAX_SHARDS_READ)
    assert len(set(read)) == len(read)
    assert set(read) <= set(budget.paths(NOW))


def test_large_caps_spread_their_writes_over_many_shards():
    assert shards_for(10_000_000, 8) > MAX_SHARDS_READ  # so sampling is what bounds the read
    budget = Budget("pool:all", 10_000_000)
    seen = {p for seed in range(50) for p in budget.read_paths(NOW, random.Random(seed))}
    assert len(seen) > 10 * MAX_SHARDS_READ  # different sends land on different shards


def test_take_only_picks_a_shard_it_read_and_never_passes_the_cap():
    budget = Budget("pool:known", 40, min_shards=4)  # 4 shards of 10: every shard is read
    docs: dict[str, dict | None] = {p: None for p in budget.read_paths(NOW, random.Random(1))}
    taken = 0
    while (pick := budget.take(docs, NOW)) is not None:
        path, contents = pick
        assert path in docs
        docs[path] = contents
        taken += 1
    assert taken == 40


def test_take_ignores_shards_that_were_not_read():
    budget = Budget("pool:all", 10_000_000)
    read = budget.read_paths(NOW, random.Random(2))
    docs = {p: {"n": budget.per_shard} for p in read}  # every shard read is full
    assert budget.take(docs, NOW) is None


@pytest.mark.parametrize("cap", ["1000", "10000000"])
@pytest.mark.parametrize("guard", ["true", "false"])
def test_one_send_reads_a_bounded_number_of_documents_whatever_the_cap(cap, guard):
    from otplogin.config import Settings
    from otplogin.guard import SendGuard

    env = {"GOOGLE_CLOUD_PROJECT": "demo-otp", "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1",
           "OTP_SENDS_GLOBAL_PER_HOUR": cap, "GUARD_ENABLED": guard}
    guard_ = SendGuard(Settings.from_env(env), mac=lambda kind, value: f"{kind}{value}" * 4, pepper=lambda: "p" * 32)
    pending = guard_.prepare("+243812345678", "k" * 40, "198.51.100.7", NOW)
    assert len(pending.paths) == len(set(pending.paths))
    # client window (2 x 4), marker, range and country windows (2 x 2 x 4), three budgets of <= 16 shards
    assert len(pending.paths) <= 8 + 1 + 16 + 3 * MAX_SHARDS_READ


@pytest.mark.parametrize("cap", [40, 10_000_000])
def test_shards_are_drawn_by_index_exactly_as_from_the_full_list(cap):
    # A large budget's shards are drawn without listing them: the same draw as sampling the list.
    budget = Budget("pool:new:CD", cap)
    every = budget.paths(NOW)
    expected = every if len(every) <= MAX_SHARDS_READ else random.Random(7).sample(every, MAX_SHARDS_READ)
    assert budget.read_paths(NOW, random.Random(7)) == expected


def test_take_sees_only_this_budgets_shards_of_this_hour_with_room():
    budget = Budget("pool:new:CD", 10_000_000)
    read = budget.read_paths(NOW, random.Random(3))
    room = read[5]
    docs: dict[str, dict | None] = {p: {"n": budget.per_shard} for p in read} | {room: {"n": budget.per_shard - 1}}
    # Look-alikes that must never be taken: another budget, another hour, a shard past the count.
    other = Budget("pool:new:CDX", 10_000_000).read_paths(NOW, random.Random(3))[0]
    docs |= {other: None, budget.paths(NOW - 3600)[0]: None, f"{budget.paths(NOW)[0][:-2]}:{budget.shards}": None}
    for _ in range(30):  # take draws among the open shards: a look-alike would be drawn sooner or later
        path, contents = budget.take(docs, NOW)
        assert path == room and contents["n"] == budget.per_shard
