"""Stopping a server started in its own process group (`start_new_session=True`)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen, grace: float = 5.0) -> int | None:
    """SIGTERM the whole group, SIGKILL it after `grace` seconds; return the leader's exit code.

    The group, not the process: wrappers (gcloud -> Java, functions-framework -> gunicorn
    workers) leave children listening if only the leader dies."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # the leader may be gone while others in its group live on
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return proc.poll()
