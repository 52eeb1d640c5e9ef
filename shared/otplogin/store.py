"""Firestore access: a lazily created client and one atomic read-check-write.

Why not Firestore transactions: they take pessimistic locks, and under
contention on one document they queue and abort (DESIGN.md measured 2 s to
61 s for 10 parallel consumes of one code). `atomic_update` reads the
documents, lets a plain function decide, then commits every write in one
batch guarded by preconditions (`last_update_time` for documents that existed,
`create` for those that did not). If any document changed in between, the
whole batch is rejected and the decision is made again on fresh data. So every
answer follows a committed write, and nothing is half-written.

Lost answers: a commit that times out (or whose connection drops) may still
have landed. Every plan's writes carry a fresh operation id (`op_id`); after
such an error the documents are read again, and if the id is there the
planned outcome is given; if not, the decision is made again. Only when even
that read fails is the outcome unknown (`OutcomeUnknown`, a 503).
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.auth import exceptions as auth_exc
from msgspec import Struct, field

from otplogin import log
from otplogin.config import settings
from otplogin.errors import Unavailable

T = TypeVar("T")
Doc = dict[str, Any]  # a document's fields
Docs = Mapping[str, Doc | None]  # what `decide` sees: contents per path, None where absent
DELETE = object()  # a write plan value: delete this document
OP_FIELD = "op_id"  # written with every plan, so a commit whose answer was lost can be recognised


class Merge(Struct, frozen=True):
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

# A commit that failed with one of these may have been applied by the server: re-read to find out.
AMBIGUOUS_ERRORS = (
    gexc.DeadlineExceeded,
    gexc.ServiceUnavailable,
    gexc.InternalServerError,
    gexc.Unknown,
    gexc.Cancelled,
    gexc.RetryError,
)
# Errors that mean "Firestore is not answering" (reads; and the health check).
UNAVAILABLE_ERRORS = AMBIGUOUS_ERRORS
# Someone else wrote first (a precondition failed): decide again on fresh data.
_CONFLICT_ERRORS = (gexc.FailedPrecondition, gexc.Conflict, gexc.Aborted, gexc.NotFound)
# Every other API or credential error (ResourceExhausted, PermissionDenied, Unauthenticated...)
# was a refusal: nothing was written. It still answers 503, never a 500.
_REFUSED_ERRORS = (gexc.GoogleAPIError, auth_exc.GoogleAuthError)

# Retry-After of a 503: a busy document clears in moments, an outage takes longer.
BUSY_RETRY_AFTER = 1
UNAVAILABLE_RETRY_AFTER = 5

# The client's default retry keeps a call going for up to a minute while the channel's
# reconnect backoff grows: an outage must become a 503 within seconds, not hold a
# request thread for minutes. Reads retry briefly; commits never (a commit whose answer
# was lost is checked by re-reading, then decided again).
CALL_TIMEOUT = 5.0
READ_RETRY = gretry.Retry(
    initial=0.1, maximum=1.0, multiplier=2.0, timeout=CALL_TIMEOUT, predicate=gretry.if_transient_error
)
# Commits whose answer is lost cost up to `timeout` each: a request gives up after this many.
MAX_AMBIGUOUS_COMMITS = 2


class OutcomeUnknown(Unavailable):
    """A commit's answer was lost and the read that would tell failed too: it may or may not have landed."""


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


class Plan(Struct, Generic[T]):
    """What `decide` wants: new contents per document path, and the outcome.

    `writes` maps a document path to a dict (create or replace those fields),
    `DELETE`, or a `Merge` (merged with no precondition: counters). `outcome` is returned after the commit; if it is an exception
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
    """Read `paths`, call `decide(current)`, commit its writes atomically or retry.

    Raises `Unavailable` (503 with Retry-After) when Firestore refuses or does not
    answer, or when retries run out; `OutcomeUnknown` when a commit may have landed."""
    db = client()
    refs = {path: db.document(path) for path in paths}
    ambiguous_left = MAX_AMBIGUOUS_COMMITS
    for attempt in range(max_attempts):
        try:
            snapshots = _read(db, list(refs.values()), timeout)
        except _REFUSED_ERRORS as exc:  # includes AMBIGUOUS_ERRORS: a failed read wrote nothing
            raise _unavailable(exc) from exc
        current = {p: (snapshots[p].to_dict() if snapshots[p].exists else None) for p in paths}
        plan = decide(current)
        if plan.writes:
            op_id = secrets.token_hex(8)
            try:
                _commit(db, refs, snapshots, plan.writes, op_id, timeout)
            except _CONFLICT_ERRORS:
                # Someone else wrote first: decide again on fresh data, after a short jittered pause.
                time.sleep(random.uniform(0, 0.01 * (2**attempt)))  # noqa: S311 (retry jitter)
                continue
            except AMBIGUOUS_ERRORS as exc:
                if not _landed(db, refs, plan.writes, op_id, timeout, exc):
                    ambiguous_left -= 1
                    if ambiguous_left <= 0:
                        raise _unavailable(exc) from exc
                    continue  # it did not land: decide again
            except _REFUSED_ERRORS as exc:
                raise _unavailable(exc) from exc
        if isinstance(plan.outcome, BaseException):
            raise plan.outcome
        return plan.outcome
    raise Unavailable("The service is busy. Try again shortly.", retry_after=BUSY_RETRY_AFTER)


def _read(db: Any, refs: list[Any], timeout: float) -> dict[str, Any]:
    if not refs:  # a plan that only creates (a new session family): no round trip
        return {}
    return {s.reference.path: s for s in db.get_all(refs, retry=READ_RETRY, timeout=timeout)}


def _commit(db: Any, refs: dict[str, Any], snapshots: dict[str, Any], writes: dict[str, Any], op_id: str,
            timeout: float) -> None:
    batch = db.batch()
    for path, data in writes.items():
        ref = refs.get(path) or db.document(path)
        if isinstance(data, Merge):
            # Shared counters: not stamped (another request's merge may overwrite the id; the plan's
            # other documents tell whether the batch landed).
            batch.set(ref, data.fields, merge=True)
            continue
        snap = snapshots.get(path)
        stamped = data if data is DELETE else {**data, OP_FIELD: op_id}  # a copy: the plan's dict is the caller's
        if snap is None or not snap.exists:
            if data is not DELETE:
                batch.create(ref, stamped)
            continue
        option = db.write_option(last_update_time=snap.update_time)
        if data is DELETE:
            batch.delete(ref, option=option)
        else:
            batch.update(ref, stamped, option=option)
    batch.commit(retry=None, timeout=timeout)


def _landed(db: Any, refs: dict[str, Any], writes: dict[str, Any], op_id: str, timeout: float,
            error: Exception) -> bool:
    """After a lost commit answer: did the batch land? (It is atomic: one written document tells.)"""
    paths = [p for p, data in writes.items() if not isinstance(data, Merge)]
    try:
        snapshots = _read(db, [refs.get(p) or db.document(p) for p in paths], timeout)
    except _REFUSED_ERRORS as exc:
        _unavailable(exc)  # logged: the alert's signal
        raise OutcomeUnknown(retry_after=UNAVAILABLE_RETRY_AFTER) from error
    written = [p for p in paths if writes[p] is not DELETE]
    if written:
        return any(snapshots[p].exists and (snapshots[p].to_dict() or {}).get(OP_FIELD) == op_id for p in written)
    return not any(snapshots[p].exists for p in paths)  # deletes only: gone is what the plan wanted


def get_many(paths: list[str]) -> dict[str, Doc | None]:
    """The current contents of `paths` (None where absent), read in one round trip."""
    db = client()
    try:
        snapshots = _read(db, [db.document(p) for p in paths], CALL_TIMEOUT)
    except _REFUSED_ERRORS as exc:
        raise _unavailable(exc) from exc
    return {p: (snapshots[p].to_dict() if snapshots[p].exists else None) for p in paths}


def _unavailable(exc: Exception) -> Unavailable:
    """Firestore did not answer or refused: log the alert's signal (docs/runbook.md), answer 503."""
    name = type(exc).__name__
    log.event("firestore_unavailable", f"Firestore did not answer: {name}", severity=logging.ERROR, error=name)
    return Unavailable(retry_after=UNAVAILABLE_RETRY_AFTER)


def ping(timeout: float = 3.0) -> str:
    """Health: one cheap read. Returns "ok" or a short reason."""
    try:
        client().document("health/ping").get(retry=None, timeout=timeout)
        return "ok"
    except UNAVAILABLE_ERRORS:
        return "unreachable"
    except _REFUSED_ERRORS as exc:
        return type(exc).__name__
