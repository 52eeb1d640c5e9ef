"""The functions as functions-framework apps, in-process (Flask test clients)."""

from __future__ import annotations

from pathlib import Path

import functions_framework

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = ("send_otp", "verify_otp", "login")


def app_client(name: str):
    app = functions_framework.create_app(target=name, source=str(REPO / "functions" / name / "main.py"))
    return app.test_client()


def outbox_codes(db, phone: str) -> list[str]:
    """Codes the dev SMS sink recorded for `phone`, oldest first."""
    import re

    from google.cloud.firestore_v1.base_query import FieldFilter

    query = db.collection("dev_outbox").where(filter=FieldFilter("to", "==", phone))
    docs = sorted(query.stream(), key=lambda d: d.get("sent_at"))
    return [re.search(r"\b(\d{6,10})\b", d.get("body")).group(1) for d in docs]
