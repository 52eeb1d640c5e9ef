"""Rate-limit rules as plain data: the exact window edges, retry times, shard caps and TTL stamps.

Every send and verify decision is made from these numbers, so each edge is
pinned here without Firestore: an off-by-one in a window or a shard cap would
let one more SMS through (or refuse one too many) without any emulator test noticing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from otplogin.limits import COLLECTION, ShardedHourlyCounter, SlidingWindow, timestamp

HOUR = 3600
T0 = 1_750_000_000.0 - 1_750_000_000.0 % HOUR  # the start of an hour


def test_timestamp_is_an_aware_utc_datetime() -> None:
    stamp = timestamp(T0 + 1.5)
    assert stamp.tzinfo is UTC
    assert stamp == datetime.fromtimestamp(T0 + 1.5, tz=UTC)
    assert stamp.timestamp() == T0 + 1.5


def test_window_path_names_the_rule_and_the_key() -> None:
    assert COLLECTION == "otp_counters"
    assert SlidingWindow("send_phone", 5).path("abc") == "otp_counters/send_phone:abc"
    assert SlidingWindow("send_phone", 5).window_seconds == HOUR


def test_window_keeps_only_events_younger_than_the_window() -> None:
    window = SlidingWindow("w", 3, window_seconds=100)
    doc = {"events": [T0 - 100, T0 - 99.5, T0 - 1, T0]}
    # An event exactly one window old has left it; half a second younger has not.
    assert window.recent(doc, T0) == [T0 - 99.5, T0 - 1, T0]
    assert window.recent(None, T0) == []
    assert window.recent({}, T0) == []


def test_window_allows_until_the_limit_then_says_when_the_oldest_leaves() -> None:
    window = SlidingWindow("w", 2, window_seconds=100)
    assert window.retry_after(None, T0) is None
    assert window.retry_after({"events": [T0 - 10]}, T0) is None  # one below the limit
    full = {"events": [T0 - 10, T0 - 40]}  # unsorted on purpose
    assert window.retry_after(full, T0) == 60  # the older one (T0 - 40) leaves at T0 + 60
    assert window.retry_after(full, T0 + 59.5) == 1  # rounds up: never "retry now" while refused
    assert window.retry_after(full, T0 + 60) is None


def test_window_over_its_limit_waits_for_enough_events_to_leave() -> None:
    # More events than the limit (the limit was lowered): the wait is until enough have left.
    window = SlidingWindow("w", 2, window_seconds=100)
    doc = {"events": [T0 - 50, T0 - 10, T0 - 30, T0 - 5]}
    # 4 events, limit 2: one more is allowed once only one is left, so the three oldest must
    # leave, and the third of them (T0 - 10) leaves at T0 + 90.
    assert window.retry_after(doc, T0) == 90


def test_window_remaining_counts_down_and_stops_at_zero() -> None:
    window = SlidingWindow("w", 3, window_seconds=100)
    assert window.remaining(None, T0) == 3
    assert window.remaining({"events": [T0 - 1]}, T0) == 2
    assert window.remaining({"events": [T0 - 100, T0 - 1]}, T0) == 2  # the expired one does not count
    assert window.remaining({"events": [T0] * 5}, T0) == 0


def test_with_event_appends_now_drops_expired_and_stamps_the_ttl() -> None:
    window = SlidingWindow("w", 3, window_seconds=100)
    written = window.with_event({"events": [T0 - 200, T0 - 5]}, T0)
    assert written == {"events": [T0 - 5, T0], "expires_at": timestamp(T0 + 100)}
    assert window.with_event(None, T0) == {"events": [T0], "expires_at": timestamp(T0 + 100)}


def test_without_event_removes_exactly_that_one_event() -> None:
    window = SlidingWindow("w", 3, window_seconds=100)
    doc = {"events": [T0 - 5, T0 - 3, T0 - 5]}
    written = window.without_event(doc, T0 - 5, T0 + 1)
    assert written == {"events": [T0 - 3, T0 - 5], "expires_at": timestamp(T0 + 101)}
    # An event that is not there (already expired, or never landed) changes nothing else.
    assert window.without_event(doc, T0 - 4, T0)["events"] == [T0 - 5, T0 - 3, T0 - 5]
    assert window.without_event(None, T0, T0) == {"events": [], "expires_at": timestamp(T0 + 100)}


@pytest.mark.parametrize(
    "limit, shards, count, per_shard",
    [(100, 8, 8, 12), (3, 8, 3, 1), (8, 8, 8, 1), (0, 8, 1, 0), (1000, 1, 1, 1000), (10, 0, 1, 10)],
)
def test_shards_never_add_up_to_more_than_the_limit(limit: int, shards: int, count: int, per_shard: int) -> None:
    counter = ShardedHourlyCounter("global", limit, shards=shards)
    assert counter.shard_count == count
    assert counter.per_shard == per_shard
    assert counter.shard_count * counter.per_shard <= limit


def test_shard_paths_name_the_hour_and_each_shard() -> None:
    counter = ShardedHourlyCounter("global", 30, shards=3)
    hour = int(T0 // HOUR)
    expected = [f"otp_counters/global:{hour}:{i}" for i in range(3)]
    assert counter.paths(T0) == expected
    assert counter.paths(T0 + HOUR - 0.5) == expected  # the same hour to its last instant
    assert counter.paths(T0 + HOUR)[0] == f"otp_counters/global:{hour + 1}:0"
    assert ShardedHourlyCounter("global", 100).paths(T0)[-1] == f"otp_counters/global:{hour}:7"


def test_pick_takes_only_a_shard_with_room_and_none_when_all_are_full() -> None:
    counter = ShardedHourlyCounter("global", 6, shards=3)  # 2 per shard
    paths = counter.paths(T0)
    assert counter.pick({}, T0) in paths
    one_open = {paths[0]: {"count": 2}, paths[1]: {"count": 1}, paths[2]: {"count": 5}}
    assert {counter.pick(one_open, T0) for _ in range(30)} == {paths[1]}
    assert counter.pick({p: {"count": 2} for p in paths}, T0) is None
    assert counter.pick({paths[0]: None, paths[1]: {"count": 2}, paths[2]: {}}, T0) in (paths[0], paths[2])
    # A shard document without a count (or none yet) is empty, even when a shard holds only one send.
    single = ShardedHourlyCounter("global", 3, shards=3)
    assert single.pick({p: {} for p in single.paths(T0)}, T0) in single.paths(T0)
    # Every open shard gets picked, not just the first: the load is spread.
    assert {counter.pick({}, T0) for _ in range(200)} == set(paths)


def test_incremented_counts_floors_at_zero_and_expires_an_hour_after_the_hour() -> None:
    counter = ShardedHourlyCounter("global", 6, shards=3)
    ttl = timestamp(T0 + 2 * HOUR)
    assert counter.incremented(None, T0 + 10) == {"count": 1, "expires_at": ttl}
    assert counter.incremented({"count": 4}, T0 + HOUR - 1) == {"count": 5, "expires_at": ttl}
    assert counter.incremented({"count": 4}, T0, by=3)["count"] == 7
    assert counter.incremented({"count": 1}, T0, by=-1)["count"] == 0  # a refund
    assert counter.incremented({"count": 0}, T0, by=-1)["count"] == 0  # never below zero
    assert counter.incremented({"count": 1}, T0 + HOUR)["expires_at"] == timestamp(T0 + 3 * HOUR)


def test_sharded_retry_after_is_the_time_left_in_the_hour_rounded_up() -> None:
    assert ShardedHourlyCounter.retry_after(T0) == HOUR
    assert ShardedHourlyCounter.retry_after(T0 + 0.5) == HOUR
    assert ShardedHourlyCounter.retry_after(T0 + 1) == HOUR - 1
    assert ShardedHourlyCounter.retry_after(T0 + HOUR - 0.5) == 1
