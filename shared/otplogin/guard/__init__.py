"""The send guard: which texts to send when someone may be pumping SMS.

Decided inside the send's own `store.atomic_update` (the caller reads
`Pending.paths` with the code document and merges `Verdict.writes` into its
plan), so every instance decides on the same counters. The signal is
conversion: pumped numbers never verify.

Per send the guard classifies the phone, then applies, in order:

| trust | who | soft checks (may be a challenge) | budget (hard, per clock hour) |
| --- | --- | --- | --- |
| known | verified in the last GUARD_KNOWN_DAYS (by HMAC), or a login's own phone | none | known share, then the country's new share |
| proven | passed a challenge (ALTCHA or app attestation) | its client's allowance x GUARD_PROVEN_CLIENT_FACTOR | proven share, then the country's new share |
| new | anyone else | client, range and country conversion | the country's new share |

A soft check compares a sliding-hour estimate of sends with `free + k x verified`
(each verified code earns k more sends): a range, country or client address
whose codes get verified is never held back, one whose codes are not gets its
free allowance and then a challenge (GUARD_CHALLENGES) or a 429. The hard
budgets partition the project cap (OTP_SENDS_GLOBAL_PER_HOUR): their sum is
the cap, each is split over guarded shards, so the bill never passes it and an
attack on new numbers cannot spend what known phones and challenge-passers
need. A range is also held to GUARD_RANGE_CAP_PERCENT of the cap for
everything but known phones.

Documents (all in `otp_counters`, TTL on `expires_at`; see `counters`): a
known-phone marker per phone HMAC, and hourly sharded counters per range,
client bucket, country, and budget. No document grows with traffic; the
write rate per document is bounded in docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from msgspec import Struct, field

from otplogin import store
from otplogin.config import Settings
from otplogin.errors import ApiError, ChallengeRequired, RateLimited
from otplogin.guard.challenge import Challenges, ProofCheck
from otplogin.guard.clients import client_bucket
from otplogin.guard.counters import COLLECTION, HOUR, Buckets, Budget, Docs, give_back, hour_of, seconds_to_hour_end
from otplogin.guard.ranges import NumberRange, number_range
from otplogin.limits import timestamp

__all__ = ["Pending", "Proof", "SendGuard", "Verdict", "client_bucket", "number_range"]

KNOWN, PROVEN, NEW = "known", "proven", "new"
DAY = 86400


class Proof(Struct, frozen=True):
    """What the client sent to pass a challenge (either may be None)."""

    altcha: str | None = None
    attestation: str | None = None


class Verdict(Struct):
    error: ApiError | None
    writes: dict[str, Any] = field(default_factory=dict)
    ticket: dict[str, Any] | None = None  # kept in the code document: what verify and undo credit
    trust: str = NEW


class Pending(Struct):
    """One send's guard inputs: the documents to read and the decision on them."""

    guard: SendGuard
    range: NumberRange
    client: str
    phone_key: str
    trust_hint: str  # known (login's own phone), proven (a challenge passed) or new
    proof: ProofCheck
    now: float
    paths: list[str]

    def decide(self, docs: Docs) -> Verdict:
        return self.guard._decide(self, docs)

    def log_fields(self, verdict: Verdict | None = None) -> dict[str, Any]:
        fields = {"range": self.range.id, "operator": self.range.operator,
                  "trust": verdict.trust if verdict is not None else self.trust_hint}
        if self.proof.failure:
            fields["challenge_failure"] = self.proof.failure
        return fields


class SendGuard:
    def __init__(self, settings: Settings, *, mac: Callable[[str, str], str], pepper: Callable[[], str]) -> None:
        self.settings = settings
        self._mac = mac
        self.challenges = Challenges(settings, pepper)
        shards = settings.guard_counter_shards
        self.ranges = Buckets("range", shards)
        self.clients = Buckets("client", shards)
        self.countries = Buckets("country", shards)
        cap = settings.sends_global_per_hour
        if settings.guard_enabled:
            known = cap * settings.guard_known_share_percent // 100
            proven = cap * settings.guard_proven_share_percent // 100
            rest = cap - known - proven
            shares = settings.guard_country_shares or {
                c: 100 // max(1, len(settings.allowed_countries)) for c in settings.allowed_countries
            }
            self.budgets = {KNOWN: Budget("pool:known", known), PROVEN: Budget("pool:proven", proven)}
            self.country_budgets = {c: Budget(f"pool:new:{c}", rest * p // 100) for c, p in shares.items()}
        else:
            self.budgets = {}
            self.country_budgets = {}
        self.wall = Budget("pool:all", cap)  # the guard off: one project-wide wall, as before

    # -- keys -------------------------------------------------------------------------------
    def client_key(self, client_ip: str) -> str:
        return self._mac("client", client_bucket(client_ip))[:32]

    @staticmethod
    def known_path(phone_key: str) -> str:
        return f"{COLLECTION}/known:{phone_key}"

    def client_wall(self, client: str) -> Budget:
        """The guard off: one address's hourly cap, a hard budget (guarded shards), not a soft counter."""
        return Budget(f"wall_client:{client}", self.settings.sends_per_ip_per_hour, min_shards=4)

    def budget_chain(self, trust: str, country: str) -> list[Budget]:
        if not self.settings.guard_enabled:
            return [self.wall]
        own = [self.budgets[trust]] if trust in self.budgets else []
        general = [self.country_budgets[country]] if country in self.country_budgets else []
        return own + general

    # -- send -------------------------------------------------------------------------------
    def prepare(
        self, e164: str, phone_key: str, client_ip: str, now: float, *, account: bool = False, proof: Proof | None = None
    ) -> Pending:
        """Everything that needs no Firestore: the range, the client bucket, the proof's check."""
        cfg = self.settings
        rng = number_range(e164, cfg.guard_range_block_digits)
        client = self.client_key(client_ip)
        check = ProofCheck(None, None)
        if proof is not None and (proof.altcha or proof.attestation) and cfg.guard_enabled:
            check = self.challenges.check(proof.altcha, proof.attestation, phone_key, now)
        hint = KNOWN if account else (PROVEN if check.passed else NEW)
        paths = self.clients.window_paths(client, now)
        if cfg.guard_enabled:
            paths += [self.known_path(phone_key)]
            paths += self.ranges.window_paths(rng.id, now) + self.countries.window_paths(rng.country, now)
            budgets = {b.name: b for trust in (KNOWN, hint) for b in self.budget_chain(trust, rng.country)}
            for budget in budgets.values():  # a new or proven phone may turn out to be known
                paths += budget.read_paths(now)
        else:
            paths += self.wall.read_paths(now) + self.client_wall(client).read_paths(now)
        return Pending(self, rng, client, phone_key, hint, check, now, paths)

    def _decide(self, p: Pending, docs: Docs) -> Verdict:
        cfg, now = self.settings, p.now
        if not cfg.guard_enabled:
            return self._decide_wall(p, docs)
        marker = docs.get(self.known_path(p.phone_key)) or {}
        known = p.trust_hint == KNOWN or marker.get("verified_at", 0) >= now - cfg.guard_known_days * DAY
        trust = KNOWN if known else p.trust_hint
        client = self.clients.estimate(docs, p.client, now)
        client_allowance = cfg.guard_client_free_per_hour + cfg.guard_client_sends_per_verify * client.get("v", 0)
        if trust != KNOWN:
            if client.get("s", 0) >= cfg.guard_client_max_per_hour:
                return self._refuse(trust, "send_ip", self._wait(self.clients, docs, p.client, "s", cfg.guard_client_max_per_hour, now))
            range_cap = max(1, cfg.sends_global_per_hour * cfg.guard_range_cap_percent // 100)
            if self.ranges.totals(docs, p.range.id, hour_of(now))["u"] >= range_cap:
                return self._refuse(trust, "send_range", seconds_to_hour_end(now))
        if trust == PROVEN and client.get("s", 0) >= client_allowance * cfg.guard_proven_client_factor:
            wait = self._wait(self.clients, docs, p.client, "s", client_allowance * cfg.guard_proven_client_factor, now)
            return self._refuse(trust, "send_ip", wait)
        if trust == NEW:
            unconverted = self._unconverted(p, docs, client, client_allowance)
            if unconverted is not None:
                limit, wait = unconverted
                if self.challenges.kinds:
                    offer = self.challenges.issue(p.phone_key, now)
                    return Verdict(ChallengeRequired(limit=limit, challenge=offer), trust=trust)
                return self._refuse(trust, limit, wait)
        for budget in self.budget_chain(trust, p.range.country):
            taken = budget.take(docs, now)
            if taken is not None:
                return self._allow(p, trust, budget, taken)
        return self._refuse(trust, "send_global", seconds_to_hour_end(now))

    def _unconverted(
        self, p: Pending, docs: Docs, client: dict[str, float], client_allowance: float
    ) -> tuple[str, int] | None:
        """The first soft check a new number fails: (limit, seconds until it would pass), or None."""
        cfg = self.settings
        if client.get("s", 0) >= client_allowance:
            return "send_ip", self._wait(self.clients, docs, p.client, "s", client_allowance, p.now)
        rng = self.ranges.estimate(docs, p.range.id, p.now)
        allowance = cfg.guard_range_free_per_hour + cfg.guard_range_sends_per_verify * rng.get("v", 0)
        if rng.get("u", 0) >= allowance:
            return "send_range", self._wait(self.ranges, docs, p.range.id, "u", allowance, p.now)
        country = self.countries.estimate(docs, p.range.country, p.now)
        allowance = cfg.guard_country_free_per_hour + cfg.guard_country_sends_per_verify * country.get("v", 0)
        if country.get("u", 0) >= allowance:
            return "send_country", self._wait(self.countries, docs, p.range.country, "u", allowance, p.now)
        return None

    def _allow(self, p: Pending, trust: str, budget: Budget, taken: tuple[str, dict[str, Any]]) -> Verdict:
        sent = "k" if trust == KNOWN else "u"
        bumps = [
            (*self.ranges.bump(p.range.id, p.now, {sent: 1}), sent),
            (*self.clients.bump(p.client, p.now, {"s": 1}), "s"),
            (*self.countries.bump(p.range.country, p.now, {sent: 1}), sent),
        ]
        writes: dict[str, Any] = {path: merge for path, merge, _ in bumps}
        writes[taken[0]] = taken[1]
        ticket = {
            "trust": trust, "range": p.range.id, "country": p.range.country, "client": p.client, "phone": p.phone_key,
            "bumps": [f"{path}|{f}" for path, _, f in bumps], "budget": taken[0],
        }  # fmt: skip
        return Verdict(None, writes, ticket, trust)

    def _decide_wall(self, p: Pending, docs: Docs) -> Verdict:
        """The guard off: a flat per-client cap per clock hour and one project-wide budget."""
        now = p.now
        # Both are guarded writes of a shard with room: concurrent sends cannot pass either cap.
        by_client = self.client_wall(p.client).take(docs, now)
        if by_client is None:
            return self._refuse(NEW, "send_ip", seconds_to_hour_end(now))
        taken = self.wall.take(docs, now)
        if taken is None:
            return self._refuse(NEW, "send_global", seconds_to_hour_end(now))
        ticket = {"trust": NEW, "client": p.client, "bumps": [], "budget": taken[0], "client_budget": by_client[0],
                  "wall": True}
        return Verdict(None, {by_client[0]: by_client[1], taken[0]: taken[1]}, ticket, NEW)

    @staticmethod
    def _refuse(trust: str, limit: str, wait: int) -> Verdict:
        return Verdict(RateLimited(retry_after=wait, limit=limit), trust=trust)

    @staticmethod
    def _wait(buckets: Buckets, docs: Docs, key: str, name: str, allowance: float, now: float) -> int:
        """Seconds (by the minute) until the sliding estimate of `name` drops below `allowance`
        if nothing else happens: the previous hour's weight fades, then the current one's."""
        hour = hour_of(now)
        current, previous = buckets.totals(docs, key, hour)[name], buckets.totals(docs, key, hour - 1)[name]
        for step in range(60, 2 * HOUR + 1, 60):
            t = now + step
            if hour_of(t) == hour:
                estimate = current + previous * (1 - (t - hour * HOUR) / HOUR)
            else:
                estimate = current * (1 - (t - (hour + 1) * HOUR) / HOUR)
            if estimate < allowance:
                return step
        return 2 * HOUR

    # -- after the send ---------------------------------------------------------------------
    def undo(self, ticket: Mapping[str, Any] | None) -> dict[str, Any]:
        """Writes that give back what a send took (its delivery failed)."""
        if not ticket:
            return {}
        writes: dict[str, Any] = {}
        for bump in ticket.get("bumps", []):  # "path|field": Firestore has no arrays of arrays
            path, _, name = str(bump).rpartition("|")
            writes |= give_back([path], {name: 1})
        for budget in ("budget", "client_budget"):
            if ticket.get(budget):
                writes |= give_back([ticket[budget]], {"n": 1})
        return writes

    def verified(self, ticket: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
        """Writes for a verified code: its phone (by HMAC, from the send's ticket) becomes known,
        its range, country and client earn credit."""
        if not ticket or ticket.get("wall") or not self.settings.guard_enabled:
            return {}
        writes: dict[str, Any] = {
            self.known_path(str(ticket["phone"])): store.Merge(
                {"verified_at": now, "expires_at": timestamp(now + self.settings.guard_known_days * DAY)}
            )
        }
        path, merge = self.clients.bump(str(ticket["client"]), now, {"v": 1})
        writes[path] = merge
        if ticket.get("trust") != KNOWN:
            for buckets, key in ((self.ranges, ticket["range"]), (self.countries, ticket["country"])):
                path, merge = buckets.bump(str(key), now, {"v": 1})
                writes[path] = merge
        return writes

