"""Firestore access: a lazily created client and one atomic read-check-write.

Why not Firestore transactions: they take pessimistic locks, and under
contention on one document they queue and abort (DESIGN.md measured 2 s to
61 s for 10 parallel consumes of one code). `atomic_update` reads the
documents, lets a plain function decide, then commits every write in one
batch guarded by preconditions (`last_update_time` for documents that existed,
`create` for those that did not). If any document changed in between, the
whole batch is rejected and the decision is made again on fresh data. So every
answer follows a committed write, and nothing is half-written.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from otplogin import log
from otplogin.config import settings
from otplogin.errors import Unavailable

T = TypeVar("T")
Doc = dict[str, Any]  # a document's fields
Docs = Mapping[str, Doc | None]  # what `decide` sees: contents per path, None where absent
DELETE = object()  # a write plan value: delete this document


@dataclass(frozen=True)
class Merge:
    """A write plan value: merge `fields` into the document, creating it if absent, with no
    precondition. For counters: values made by `increment(n)` add server-side, so concurrent
    increments never conflict (and never make the batch retry)."""

    fields: dict[str, Any]


def increment(n: int) -> Any:
    """A `Merge` field value that adds `n` to the stored number (absent counts as 0)."""
    from google.cloud import firestore

    return firestore.Increment(n)

_client = None
_client_lock = threading.Lock()

# Errors that mean "Firestore is not answering": the client sees 503 unavailable.
UNAVAILABLE_ERRORS = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.RetryError,
    gexc.InternalServerError,
    gexc.Unknown,
)
_CONFLICT_ERRORS = (gexc.FailedPrecondition, gexc.Conflict, gexc.Aborted)

# The client's default retry keeps a call going for up to a minute while the channel's
# reconnect backoff grows: an outage must become a 503 within seconds, not hold a
# request thread for minutes. Reads retry briefly; commits never (a commit whose answer
# was lost is decided again through its preconditions instead).
CALL_TIMEOUT = 5.0
READ_RETRY = gretry.Retry(
    initial=0.1, maximum=1.0, multiplier=2.0, timeout=CALL_TIMEOUT, predicate=gretry.if_transient_error
)


def client() -> Any:
    """The process's Firestore client, created on first use (not at import)."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                from google.cloud import firestore

                _client = firestore.Client(project=settings().project)
    return _client


def reset_client() -> None:
    """Forget the client (tests point the process at a new emulator)."""
    global _client
    _client = None


@dataclass
class Plan(Generic[T]):
    """What `decide` wants: new contents per document path, and the outcome.

    `writes` maps a document path to a dict (create or replace those fields)
    or `DELETE`. `outcome` is returned after the commit; if it is an exception
    it is raised after the commit instead, so an error answer (say a counted
    wrong guess) is only given once its write is durable.
    """

    outcome: T | BaseException
    writes: dict[str, Any] = field(default_factory=dict)


def atomic_update(
    paths: list[str],
    decide: Callable[[Docs], Plan[T]],
    *,
    max_attempts: int = 8,
    timeout: float = CALL_TIMEOUT,
) -> T:
    """Read `paths`, call `decide(current)`, commit its writes atomically or retry."""
    db = client()
    refs = {path: db.document(path) for path in paths}
    for attempt in range(max_attempts):
        try:
            snapshots = {s.reference.path: s for s in db.get_all(list(refs.values()), retry=READ_RETRY, timeout=timeout)}
            current = {p: (snapshots[p].to_dict() if snapshots[p].exists else None) for p in paths}
            plan = decide(current)
            if plan.writes:
                batch = db.batch()
                for path, data in plan.writes.items():
                    ref = refs.get(path) or db.document(path)
                    if isinstance(data, Merge):
                        batch.set(ref, data.fields, merge=True)
                        continue
                    snap = snapshots.get(path)
                    if snap is None or not snap.exists:
                        if data is not DELETE:
                            batch.create(ref, data)
                        continue
                    option = db.write_option(last_update_time=snap.update_time)
                    if data is DELETE:
                        batch.delete(ref, option=option)
                    else:
                        batch.update(ref, data, option=option)
                batch.commit(retry=None, timeout=timeout)
        except _CONFLICT_ERRORS:
            # Someone else wrote first: decide again on fresh data, after a short jittered pause.
            time.sleep(random.uniform(0, 0.01 * (2**attempt)))  # noqa: S311 (retry jitter)
            continue
        except UNAVAILABLE_ERRORS as exc:
            raise _unavailable(exc) from exc
        if isinstance(plan.outcome, BaseException):
            raise plan.outcome
        return plan.outcome
    raise Unavailable("The service is busy. Try again shortly.")


def get_many(paths: list[str]) -> dict[str, Doc | None]:
    """The current contents of `paths` (None where absent), read in one round trip."""
    db = client()
    try:
        snapshots = {s.reference.path: s for s in db.get_all([db.document(p) for p in paths], retry=READ_RETRY, timeout=CALL_TIMEOUT)}
    except UNAVAILABLE_ERRORS as exc:
        raise _unavailable(exc) from exc
    return {p: (snapshots[p].to_dict() if snapshots[p].exists else None) for p in paths}


def _unavailable(exc: Exception) -> Unavailable:
    """Firestore did not answer: log the alert's signal (docs/runbook.md), answer 503."""
    name = type(exc).__name__
    log.event("firestore_unavailable", f"Firestore did not answer: {name}", severity=logging.ERROR, error=name)
    return Unavailable()


def ping(timeout: float = 3.0) -> str:
    """Health: one cheap read. Returns "ok" or a short reason."""
    try:
        client().document("health/ping").get(retry=None, timeout=timeout)
        return "ok"
    except UNAVAILABLE_ERRORS:
        return "unreachable"
    except gexc.GoogleAPICallError as exc:
        return type(exc).__name__
