"""Benchmark data: phones, active codes and users, written through the library where it matters.

Codes are issued by the library's own `OtpService.send` (same HMACs, same
documents as a real send); only the SMS is replaced by a no-op. Users: one is
created by `users.create` (Argon2id hash, encrypted PII), and its document is
cloned under new codes and emails with batched writes (500 writes a batch), so
seeding 100,000 users costs no 100,000 Argon2id hashes.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from msgspec import structs

from otplogin import passwords, runtime, store, users
from otplogin.errors import RateLimited, Unavailable

PASSWORD = "correct horse battery staple"  # noqa: S105 (benchmark data)
CODE = "123456"

# DR Congo mobile ranges (+243 8x xxx xxxx): 10 million valid numbers per prefix.
PHONE_PREFIX = {"verify": "+24381", "send": "+24382", "floor": "+24384", "first": "+24385", "load": "+24389"}
_counters: dict[str, itertools.count] = {}
_counter_lock = threading.Lock()


def phones(kind: str, count: int) -> list[str]:
    """`count` phone numbers never handed out before in this run."""
    with _counter_lock:
        counter = _counters.setdefault(kind, itertools.count())
        numbers = [next(counter) for _ in range(count)]
    if numbers and numbers[-1] >= 10_000_000:
        raise RuntimeError(f"out of {kind} phone numbers")
    return [f"{PHONE_PREFIX[kind]}{n:07d}" for n in numbers]


_ip = itertools.count(1)


def client_ip() -> str:
    """A distinct client address (per-IP limits stay per user, as in production)."""
    n = next(_ip)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class _NoSms:
    def send(self, to: str, body: str, channel: str) -> None:
        pass


def seed_codes(numbers: list[str], workers: int = 4) -> None:
    """Issue code CODE to every number through `OtpService.send` (no SMS)."""
    from otplogin.otp import OtpService

    # The send guard's free allowances out of the way: seeding many numbers of one range is setup, not abuse.
    roomy = structs.replace(runtime.settings(), guard_client_free_per_hour=1_000_000,
                                guard_range_free_per_hour=1_000_000, guard_country_free_per_hour=1_000_000)
    svc = OtpService(
        roomy, pepper=lambda: runtime.secret(runtime.OTP_PEPPER), sender=lambda: _NoSms(),
        make_code=lambda n: CODE[:n],
    )

    def one(phone: str) -> None:
        for attempt in range(3):  # seeding is not measured: a slow emulator only delays it
            try:
                svc.send(phone, "sms", "en", client_ip())
                return
            except Unavailable:
                if attempt == 2:
                    raise
            except RateLimited:  # an earlier attempt's commit went through (its answer was lost)
                return

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, numbers))


def user_code(i: int) -> str:
    return f"BENCH{i:07d}"


def user_email(i: int) -> str:
    return f"user{i:07d}@bench.example"


class UserSeeder:
    """Grows the users collection: `grow_to(n)` adds users until there are n bench users."""

    def __init__(self) -> None:
        self.count = 0
        self._template: dict | None = None

    def _first(self) -> None:
        keyring = runtime.pii_keyring()
        users.write_canary(keyring)
        user = users.create(
            code=user_code(0), email=user_email(0), password_hash=passwords.hash_password(PASSWORD),
            role="user", keyring=keyring,
            pii={"phone": "+243812345678", "address": "12 avenue du Commerce, Kinshasa", "whatsapp": "+243812345678"},
        )
        self._template = dict(user.data)
        self.count = 1

    def grow_to(self, n: int, workers: int = 4) -> float:
        """Add users until `n` exist; returns the seconds it took."""
        started = time.perf_counter()
        if self._template is None:
            self._first()
        db = store.client()
        per_batch = 250  # two documents a user: 500 writes per batch (Firestore's maximum)
        chunks = [range(s, min(s + per_batch, n)) for s in range(self.count, n, per_batch)]

        def write(chunk: range) -> None:
            batch = db.batch()
            for i in chunk:
                data = self._template | {"id": f"bench{i:032x}", "email": user_email(i)}
                batch.set(db.document(f"{users.USERS}/{user_code(i)}"), data)
                batch.set(db.document(f"{users.EMAILS}/{user_email(i)}"), {"code": user_code(i)})
            batch.commit(timeout=120)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(write, chunks))
        self.count = max(self.count, n)
        return time.perf_counter() - started
