#!/usr/bin/env python3
"""GET each deployed function's health answer; fail with what to do.

Usage (the deploy workflow, after `terraform apply`)::

    python3 terraform/scripts/health_check.py \\
        --urls "$(terraform -chdir=terraform output -json function_urls)" login send_otp

A function passes when it answers 200 with `"status": "ok"`. Anything else is a
GitHub `::error::` line naming each check that is not ok (the answer never holds
a secret), and exit status 1. A fresh function may take a few seconds to serve:
each URL is tried `--attempts` times, `--delay` seconds apart, first.

The one failure a fresh deployment is expected to show has its own message:
login's `checks.pii_keyring` is `canary_missing` until `otplogin-admin init` has
written the key canary. CI does not run init: it needs the PII keyring and
Firestore write access, which the deployer does not hold (docs/deploy.md).

Only the standard library: CI runs it before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

BOOTSTRAP = (
    "login has no key canary yet (checks.pii_keyring=canary_missing): the bootstrap is not finished. "
    "Run `otplogin-admin init` once, as an operator (docs/deploy.md, 'Bootstrap the data'), then re-run this job."
)


def fetch(url: str, timeout: float) -> tuple[int, Any]:
    """(status, parsed JSON body or the raw text); status 0 when nothing answered."""
    if not url.startswith(("https://", "http://")):
        return 0, f"not an http(s) URL: {url!r}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (scheme checked above)
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return 0, str(exc)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")[:200]


def failing_checks(body: Any) -> list[str]:
    """`name: reason` of every check that is not ok (secrets as secrets.<id>)."""
    if not isinstance(body, dict) or not isinstance(body.get("checks"), dict):
        return []
    found = []
    for name, value in body["checks"].items():
        if isinstance(value, dict):
            found += [f"{name}.{key}: {reason}" for key, reason in value.items() if reason != "ok"]
        elif value not in ("ok", "twilio", "dev_outbox"):  # sms_provider names the provider
            found.append(f"{name}: {value}")
    return found


def check(name: str, url: str, attempts: int, delay: float, timeout: float) -> str | None:
    """None when healthy, else the error message."""
    status, body = 0, None
    for attempt in range(attempts):
        status, body = fetch(url, timeout)
        if status == 200 and isinstance(body, dict) and body.get("status") == "ok":
            return None
        if attempt + 1 < attempts:
            time.sleep(delay)
    failing = failing_checks(body)
    if "pii_keyring: canary_missing" in failing:
        return f"{name}: {BOOTSTRAP}"
    if status == 0:
        return f"{name}: no answer from {url} ({body})"
    detail = "; ".join(failing) if failing else f"answer: {body!r}"
    return f"{name}: HTTP {status}, {detail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--urls", required=True, help="JSON {function: url} (terraform output -json function_urls)")
    parser.add_argument("--attempts", type=int, default=6)
    parser.add_argument("--delay", type=float, default=10.0, help="seconds between attempts")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per request")
    parser.add_argument("functions", nargs="*", help="functions to check (none: nothing to do)")
    args = parser.parse_args(argv)
    urls = json.loads(args.urls)
    failed = False
    for name in args.functions:
        url = urls.get(name)
        problem = f"{name}: no URL in the Terraform outputs" if not url else check(
            name, url, args.attempts, args.delay, args.timeout
        )
        if problem:
            failed = True
            print(f"::error::{problem}")
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
