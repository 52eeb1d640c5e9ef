#!/usr/bin/env python3
"""Which functions a saved deploy plan deploys; refuse a plan that does more.

Usage (the deploy workflow, after `terraform plan -target ... -out=deploy.tfplan`)::

    terraform show -json deploy.tfplan > plan.json
    python3 terraform/scripts/deploy_plan.py plan.json --functions "send_otp verify_otp login"

Prints the functions whose archive object or function the plan changes, sorted,
on one line (empty: nothing to deploy). Exits 1, with a GitHub `::error::`
line, when the plan

* changes any other resource: infrastructure drifted or changed, and the infra
  team applies terraform/ in full first (a targeted plan also plans what its
  targets depend on);
* creates a function: the bootstrap is not finished (docs/deploy.md creates the
  functions with a full apply, after the secrets and `otplogin-admin init`);
* replaces or deletes a function.

Only the standard library: CI runs it before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

OBJECT = "google_storage_bucket_object.source"
FUNCTION = "google_cloudfunctions2_function.function"
ADDRESS = re.compile(r'^(?P<resource>[a-z0-9_]+\.[a-z0-9_]+)\["(?P<key>[a-z0-9_]+)"\]$')
UNCHANGED = (["no-op"], ["read"])
# A new archive is a new object: created, then the old one deleted (create_before_destroy).
OBJECT_ACTIONS = (["create"], ["update"], ["create", "delete"], ["delete", "create"])
FUNCTION_ACTIONS = (["update"],)


class PlanRefused(Exception):
    """The plan does something a function deploy must not do."""


def deployed_functions(plan: dict[str, Any], allowed: set[str]) -> list[str]:
    changed: set[str] = set()
    for rc in plan.get("resource_changes", []):
        actions = rc.get("change", {}).get("actions", [])
        if actions in UNCHANGED:
            continue
        address = rc.get("address", "?")
        match = ADDRESS.match(address)
        resource, key = (match.group("resource"), match.group("key")) if match else ("", "")
        if resource not in (OBJECT, FUNCTION) or key not in allowed:
            raise PlanRefused(
                f"the plan changes {address} ({'/'.join(actions)}), not only the functions' archives: "
                "the infrastructure changed or drifted; the infra team applies terraform/ in full first "
                "(docs/deploy.md, 'Continuous deployment')"
            )
        if resource == FUNCTION and actions == ["create"]:
            raise PlanRefused(
                f"the plan creates {address}: the bootstrap is not finished. CI updates functions, it never "
                "creates one: the full apply of docs/deploy.md does, after the secret values and "
                "`otplogin-admin init`"
            )
        if actions not in (FUNCTION_ACTIONS if resource == FUNCTION else OBJECT_ACTIONS):
            raise PlanRefused(f"the plan would {'/'.join(actions)} {address}: a deploy only updates a function")
        changed.add(key)
    return sorted(changed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("plan", type=Path, help="`terraform show -json` of the saved plan")
    parser.add_argument("--functions", required=True, help="the functions the plan targets, space separated")
    args = parser.parse_args(argv)
    try:
        plan = json.loads(args.plan.read_text(encoding="utf-8"))
        functions = deployed_functions(plan, set(args.functions.split()))
    except (OSError, ValueError) as exc:
        print(f"::error::cannot read the plan {args.plan}: {exc}")
        return 1
    except PlanRefused as exc:
        print(f"::error::{exc}")
        return 1
    if not functions:
        print("nothing to deploy: every archive and function matches the state", file=sys.stderr)
    print(" ".join(functions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
