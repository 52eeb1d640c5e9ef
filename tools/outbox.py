"""`make outbox`: print the messages the development SMS sink recorded (newest last)."""

from __future__ import annotations

import os

from google.cloud import firestore


def main() -> None:
    os.environ.setdefault("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{os.environ.get('FIRESTORE_PORT', '8080')}")
    db = firestore.Client(project="demo-otp")
    messages = sorted((d.to_dict() for d in db.collection("dev_outbox").stream()), key=lambda m: m["sent_at"])
    for m in messages[-20:]:
        print(f"{m['sent_at']:%H:%M:%S}  {m['channel']:<8} {m['to']:<16} {m['body']}")
    if not messages:
        print("the dev outbox is empty: send a code first")


if __name__ == "__main__":
    main()
