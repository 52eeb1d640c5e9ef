"""Hourly bucket counters split over shard documents: no event lists, no hot document.

A counter family `name` keeps, per key and clock hour, `shards` documents
`otp_counters/{name}:{key}:{hour}:{shard}` holding a few integer fields. Every
write goes to one shard, so a document takes at most 1/shards of its key's
writes, and it holds a fixed set of numbers however much traffic there is
(an event list grows with traffic and is rewritten on every event).

Two ways to write:
- `bump`: a server-side increment merged into a random shard, with no
  precondition: concurrent increments never conflict (soft counters, whose
  reader tolerates a count that is a few in-flight requests behind);
- `take`: a guarded read-check-write of one shard that still has room, each
  shard holding at most cap // shards: the sum can never pass the cap, however
  many instances race (hard budgets: the bill).

A sliding hour is estimated from two buckets, the current one plus the previous
one weighted by the part of it still inside the window (the estimate is exact
for evenly spread traffic, and never off by more than the previous hour's count).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from msgspec import Struct

from otplogin import store
from otplogin.limits import timestamp

COLLECTION = "otp_counters"
Docs = Mapping[str, "dict[str, Any] | None"]  # what atomic_update read, by path
HOUR = 3600
# Firestore sustains about one write a second per document: a hard budget gets enough shards
# that its cap, spread over an hour, stays at or below half of that per shard.
SUSTAINED_WRITES_PER_SHARD = 0.5
# A send reads at most this many shards of a budget, picked at random: a high cap spreads its writes
# over many shards without making every send read them all (10M an hour is 5,556 shards).
MAX_SHARDS_READ = 16


def hour_of(now: float) -> int:
    return int(now // HOUR)


def shards_for(cap: int, minimum: int) -> int:
    """Enough shards for `cap` an hour to stay under SUSTAINED_WRITES_PER_SHARD per shard."""
    return max(1, min(cap, max(minimum, math.ceil(cap / (HOUR * SUSTAINED_WRITES_PER_SHARD)))))


def _expires(hour: int) -> Any:
    # Kept through the next hour (the sliding estimate reads it), then left to the TTL policy.
    return timestamp((hour + 2) * HOUR)


class Buckets(Struct, frozen=True):
    name: str
    shards: int

    def paths(self, key: str, hour: int) -> list[str]:
        return [f"{COLLECTION}/{self.name}:{key}:{hour}:{i}" for i in range(self.shards)]

    def window_paths(self, key: str, now: float) -> list[str]:
        hour = hour_of(now)
        return self.paths(key, hour) + self.paths(key, hour - 1)

    def totals(self, docs: Docs, key: str, hour: int) -> Counter[str]:
        total: Counter[str] = Counter()
        for path in self.paths(key, hour):
            for name, value in (docs.get(path) or {}).items():
                if isinstance(value, int) and not isinstance(value, bool):
                    total[name] += value
        return total

    def estimate(self, docs: Docs, key: str, now: float) -> dict[str, float]:
        """Sliding-hour estimate of every field: current bucket + previous bucket x its share still in the window."""
        hour = hour_of(now)
        weight = 1.0 - (now - hour * HOUR) / HOUR
        current, previous = self.totals(docs, key, hour), self.totals(docs, key, hour - 1)
        return {f: current[f] + previous[f] * weight for f in set(current) | set(previous)}

    def bump(self, key: str, now: float, fields: Mapping[str, int], shard: int | None = None) -> tuple[str, store.Merge]:
        """Add `fields` to one shard of this hour (random unless given), without a precondition."""
        hour = hour_of(now)
        index = random.randrange(self.shards) if shard is None else shard  # noqa: S311 (load spreading)
        path = self.paths(key, hour)[index]
        merged = {f: store.increment(n) for f, n in fields.items()} | {"expires_at": _expires(hour)}
        return path, store.Merge(merged)


class Budget(Struct, frozen=True):
    """A hard hourly budget of `cap` over `shards` guarded shard documents (field `n`)."""

    name: str
    cap: int
    min_shards: int = 8

    @property
    def shards(self) -> int:
        return shards_for(self.cap, self.min_shards) if self.cap > 0 else 1

    @property
    def per_shard(self) -> int:
        return self.cap // self.shards if self.cap > 0 else 0

    def paths(self, now: float) -> list[str]:
        hour = hour_of(now)
        return [self._path(hour, i) for i in range(self.shards)]

    def _path(self, hour: int, index: int | str) -> str:
        return f"{COLLECTION}/{self.name}:{hour}:{index}"

    def read_paths(self, now: float, rng: random.Random | None = None) -> list[str]:
        """The shards one send reads: all of them, or MAX_SHARDS_READ at random when there are more.

        Each shard still holds at most `per_shard`, so the cap holds whichever are read; with a
        sample, a send may be refused once the shards it drew are full while a few others still
        have room (only near the end of the budget: 16 draws all full means ~96% of it is spent,
        at even odds). Drawn by index: a large budget has thousands of shards, never listed."""
        hour, count = hour_of(now), self.shards
        if count <= MAX_SHARDS_READ:
            return [self._path(hour, i) for i in range(count)]
        drawn = (rng or random).sample(range(count), MAX_SHARDS_READ)  # noqa: S311 (load spreading)
        return [self._path(hour, i) for i in drawn]

    def take(self, docs: Docs, now: float) -> tuple[str, dict[str, Any]] | None:
        """One shard that was read and has room, with its new contents (a guarded write), or None."""
        hour, count, room = hour_of(now), self.shards, self.per_shard
        prefix = self._path(hour, "")
        read = {int(p[len(prefix):]): p for p in docs if p.startswith(prefix) and p[len(prefix):].isdecimal()}
        open_shards = [p for i, p in sorted(read.items()) if i < count and (docs[p] or {}).get("n", 0) < room]
        if not open_shards:
            return None
        path = random.choice(open_shards)  # noqa: S311 (load spreading, not security)
        doc = docs.get(path) or {}
        return path, {"n": doc.get("n", 0) + 1, "expires_at": _expires(hour)}


def give_back(paths: Iterable[str], fields: Mapping[str, int]) -> dict[str, store.Merge]:
    """Undo increments on exactly these shards (a failed delivery)."""
    return {p: store.Merge({f: store.increment(-n) for f, n in fields.items()}) for p in paths}


def seconds_to_hour_end(now: float) -> int:
    return max(1, math.ceil(HOUR - now % HOUR))
