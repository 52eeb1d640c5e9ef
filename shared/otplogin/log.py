"""Structured JSON logs on stdout, in the shape Cloud Logging understands.

Each line is one JSON object with `severity`, `message`, the request's trace
(`logging.googleapis.com/trace`) when Google's front end sent one, and the
event's fields. Log-based metrics and alerts filter on `event` and its fields,
so those names are a contract (docs/architecture.md). Never pass a code, a
full phone number, a password or a secret: use `mask_phone`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from typing import Any

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)
_configured = False


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        trace = _trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            # Stack traces go to the logs only, never into a response body.
            entry["stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: str = "INFO") -> None:
    """Send every logger's records to stdout as JSON lines (idempotent)."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Client libraries log request URLs and bodies at DEBUG/INFO; keep them quiet.
    for noisy in ("twilio", "urllib3", "google", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def set_trace(header: str | None, project: str) -> None:
    """Take the trace id from `X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1`."""
    trace_id = (header or "").split("/", 1)[0].strip()
    ok = trace_id.isalnum() and len(trace_id) <= 64
    _trace.set(f"projects/{project}/traces/{trace_id}" if ok else None)


def event(name: str, message: str, *, severity: int = logging.INFO, **fields: Any) -> None:
    """Log one named event; `event` and the fields are what metrics filter on."""
    logging.getLogger("otplogin").log(severity, message, extra={"fields": {"event": name, **fields}})


def mask_phone(e164: str) -> str:
    """`+243812345678` -> `+243*******78`: enough to correlate, not to call."""
    if len(e164) < 7:
        return "*" * len(e164)
    return e164[:4] + "*" * (len(e164) - 6) + e164[-2:]
