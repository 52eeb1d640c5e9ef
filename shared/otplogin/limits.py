"""Rate limits as plain data rules, applied inside `store.atomic_update` decisions.

Two shapes, chosen for Firestore's ~1 write/s/document guidance:
- `SlidingWindow`: an exact log of event times in one document per key (a phone
  or an IP, as an HMAC). Per-key traffic is naturally spread across documents.
- `ShardedHourlyCounter`: a project-wide hourly cap split over N shard
  documents (Firestore's distributed-counter pattern). Each shard holds at most
  limit // N, so the sum never exceeds the limit and no single document is hot.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from msgspec import Struct

COLLECTION = "otp_counters"


def timestamp(epoch: float) -> datetime:
    """A Firestore Timestamp value (TTL policies need a Timestamp field)."""
    return datetime.fromtimestamp(epoch, tz=UTC)


class SlidingWindow(Struct, frozen=True):
    name: str
    limit: int
    window_seconds: int = 3600

    def path(self, key: str) -> str:
        return f"{COLLECTION}/{self.name}:{key}"

    def recent(self, doc: dict[str, Any] | None, now: float) -> list[float]:
        return [t for t in (doc or {}).get("events", []) if now - t < self.window_seconds]

    def retry_after(self, doc: dict[str, Any] | None, now: float) -> int | None:
        """Seconds until one more event is allowed, or None if allowed now."""
        events = self.recent(doc, now)
        if len(events) < self.limit:
            return None
        oldest_that_must_expire = sorted(events)[len(events) - self.limit]
        return max(1, math.ceil(oldest_that_must_expire + self.window_seconds - now))

    def remaining(self, doc: dict[str, Any] | None, now: float) -> int:
        return max(0, self.limit - len(self.recent(doc, now)))

    def with_event(self, doc: dict[str, Any] | None, now: float) -> dict[str, Any]:
        events = self.recent(doc, now) + [now]
        return {"events": events, "expires_at": timestamp(now + self.window_seconds)}

    def without_event(self, doc: dict[str, Any] | None, event: float, now: float) -> dict[str, Any]:
        events = self.recent(doc, now)
        if event in events:
            events.remove(event)
        return {"events": events, "expires_at": timestamp(now + self.window_seconds)}


class ShardedHourlyCounter(Struct, frozen=True):
    name: str
    limit: int
    shards: int = 8

    @property
    def shard_count(self) -> int:
        return max(1, min(self.shards, self.limit))

    @property
    def per_shard(self) -> int:
        return self.limit // self.shard_count

    def paths(self, now: float) -> list[str]:
        hour = int(now // 3600)
        return [f"{COLLECTION}/{self.name}:{hour}:{i}" for i in range(self.shard_count)]

    def pick(self, docs: Mapping[str, dict[str, Any] | None], now: float) -> str | None:
        """A random shard with room left this hour, or None when the cap is reached."""
        open_shards = [p for p in self.paths(now) if (docs.get(p) or {}).get("count", 0) < self.per_shard]
        return random.choice(open_shards) if open_shards else None  # noqa: S311 (load spreading, not security)

    def incremented(self, doc: dict[str, Any] | None, now: float, by: int = 1) -> dict[str, Any]:
        hour_end = (int(now // 3600) + 1) * 3600
        return {"count": max(0, (doc or {}).get("count", 0) + by), "expires_at": timestamp(hour_end + 3600)}

    @staticmethod
    def retry_after(now: float) -> int:
        return max(1, math.ceil(3600 - now % 3600))
