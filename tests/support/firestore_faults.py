"""A real Firestore client whose calls fail on cue: lost commit answers, refused calls.

    faulty = FaultyFirestore(store.client())
    faulty.fail("commit", DeadlineExceeded("lost"), landed=True)  # the write lands, then the answer is lost
    faulty.fail("get_all", ServiceUnavailable("down"), after=1)    # the read after the next one fails

A fault fires on the next call of its kind (or, with `after=n`, on the one
after n more), `times` calls in a row; every other call goes to the real
client (the emulator). `landed=True` applies the commit first, which is what
a `DeadlineExceeded` after the server committed looks like to the caller.
"""

from __future__ import annotations

from typing import Any


class FaultyFirestore:
    def __init__(self, real: Any) -> None:
        self._real = real
        # (call, call number it fires on, error, landed)
        self._faults: list[tuple[str, int, BaseException, bool]] = []
        self.calls: dict[str, int] = {"commit": 0, "get_all": 0}

    def fail(self, call: str, error: BaseException, *, landed: bool = False, after: int = 0, times: int = 1) -> None:
        if call not in self.calls:
            raise ValueError(f"unknown call {call!r}")
        first = self.calls[call] + after + 1
        self._faults.extend((call, first + i, error, landed) for i in range(times))

    @property
    def pending(self) -> int:
        """Faults scheduled that have not fired yet."""
        return len(self._faults)

    def _next_fault(self, call: str) -> tuple[BaseException, bool] | None:
        self.calls[call] += 1
        for i, (kind, number, error, landed) in enumerate(self._faults):
            if kind == call and number == self.calls[call]:
                del self._faults[i]
                return error, landed
        return None

    # -- the calls store.py makes ------------------------------------------
    def get_all(self, refs: Any, **kwargs: Any) -> Any:
        fault = self._next_fault("get_all")
        if fault is not None:
            raise fault[0]
        return self._real.get_all(refs, **kwargs)

    def batch(self) -> _FaultyBatch:
        return _FaultyBatch(self._real.batch(), self)

    def __getattr__(self, name: str) -> Any:  # document, collection, write_option, ...
        return getattr(self._real, name)


class _FaultyBatch:
    def __init__(self, real: Any, owner: FaultyFirestore) -> None:
        self._real = real
        self._owner = owner

    def commit(self, **kwargs: Any) -> Any:
        fault = self._owner._next_fault("commit")
        if fault is None:
            return self._real.commit(**kwargs)
        error, landed = fault
        if landed:
            self._real.commit(**kwargs)
        raise error

    def __getattr__(self, name: str) -> Any:  # create, update, delete, set
        return getattr(self._real, name)
