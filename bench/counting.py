"""Count gRPC calls (Firestore and Secret Manager RPCs) made by this process.

`install()` wraps `grpc.insecure_channel`, which both the Firestore client (in
emulator mode) and `otplogin.secrets.make_client` (local Secret Manager) use,
so every channel created afterwards passes each call through one counting
interceptor. What is counted is the wire: one entry per RPC actually sent
(`BatchGetDocuments`, `Commit`, `RunQuery`, `BeginTransaction`,
`AccessSecretVersion`, ...), whatever library method sent it.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager

import grpc


class RpcCounter(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def _count(self, details: grpc.ClientCallDetails) -> None:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        with self._lock:
            self._counts[method.rsplit("/", 1)[-1]] += 1

    def intercept_unary_unary(self, continuation, details, request):
        self._count(details)
        return continuation(details, request)

    def intercept_unary_stream(self, continuation, details, request):
        self._count(details)
        return continuation(details, request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        self._count(details)
        return continuation(details, request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        self._count(details)
        return continuation(details, request_iterator)

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    @contextmanager
    def measure(self):
        """`with counter.measure() as delta:` -> `delta` holds the calls made inside the block."""
        before = self.snapshot()
        delta: Counter[str] = Counter()
        try:
            yield delta
        finally:
            after = self.snapshot()
            after.subtract(before)
            delta.update({k: v for k, v in after.items() if v})


COUNTER = RpcCounter()
_installed = False

FIRESTORE_RPCS = (
    "BatchGetDocuments", "Commit", "RunQuery", "RunAggregationQuery", "BeginTransaction", "Rollback",
    "GetDocument", "ListDocuments", "BatchWrite", "Write", "Listen", "PartitionQuery",
    "UpdateDocument", "DeleteDocument", "CreateDocument", "ListCollectionIds",
)
SCAN_RPCS = ("RunQuery", "RunAggregationQuery", "ListDocuments", "PartitionQuery")
SECRET_RPCS = ("AccessSecretVersion",)


def install() -> RpcCounter:
    """Make every gRPC channel created from now on count its calls (idempotent)."""
    global _installed
    if not _installed:
        original = grpc.insecure_channel

        def counting_channel(target, options=None, compression=None):
            return grpc.intercept_channel(original(target, options, compression), COUNTER)

        grpc.insecure_channel = counting_channel
        _installed = True
    return COUNTER


def firestore_calls(delta: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in delta.items() if k in FIRESTORE_RPCS}


def secret_calls(delta: Counter[str]) -> int:
    return sum(v for k, v in delta.items() if k in SECRET_RPCS)
