"""User documents: lookup by email or user code (direct gets, no queries), PII encryption.

`users/{code}` holds the account; `user_emails/{email}` points to its code, so
a login by email is two document gets and never a query scan. Phone, address
and WhatsApp are stored only as keyring ciphertexts (`"<kid>:<fernet token>"`).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from msgspec import Struct

from otplogin import log, store
from otplogin.errors import InvalidRequest
from otplogin.keyring import Keyring, UndecryptableError

USERS = "users"
EMAILS = "user_emails"
PII_FIELDS = ("phone", "address", "whatsapp")
ROLES = ("user", "admin")
CODE_PATTERN = re.compile(r"^[A-Z0-9]{4,32}$")
EMAIL_PATTERN = re.compile(r"^[^@\s/]{1,64}@[^@\s/]{1,255}$")


class UserExists(Exception):
    pass


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    # `__x__` is reserved for Firestore document ids; no real mailbox looks like that.
    if not EMAIL_PATTERN.match(email) or (email.startswith("__") and email.endswith("__")):
        raise InvalidRequest("email is not a valid address.", field="email")
    return email


def normalize_code(code: str) -> str:
    code = code.strip().upper()
    if not CODE_PATTERN.match(code):
        raise InvalidRequest("code is not a valid user code.", field="code")
    return code


class User(Struct, frozen=True):
    code: str
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def email(self) -> str:
        return str(self.data["email"])

    @property
    def role(self) -> str:
        return str(self.data.get("role", "user"))

    @property
    def mfa_enabled(self) -> bool:
        return bool(self.data.get("mfa_enabled"))

    @property
    def path(self) -> str:
        return f"{USERS}/{self.code}"


def get_by_code(code: str) -> User | None:
    doc = store.get_many([f"{USERS}/{code}"])[f"{USERS}/{code}"]
    return User(code, doc) if doc is not None else None


def get_by_email(email: str) -> User | None:
    pointer = store.get_many([f"{EMAILS}/{email}"])[f"{EMAILS}/{email}"]
    return get_by_code(pointer["code"]) if pointer is not None else None


def lookup_path(*, email: str | None, code: str | None) -> str:
    """The document a sign-in reads first: the email pointer, or the user itself.

    Normalizes (400 `InvalidRequest` if malformed); finish with `account_path`."""
    if email:
        return f"{EMAILS}/{normalize_email(email)}"
    return f"{USERS}/{normalize_code(code or '')}"


def is_pointer(path: str) -> bool:
    """True for an email pointer path (`user_emails/...`), which costs one get to follow."""
    return path.startswith(f"{EMAILS}/")


def account_path(path: str, pointer: store.Doc | None = None) -> str | None:
    """The user document a `lookup_path` names: itself, or where its email pointer leads (None: no such email)."""
    if not is_pointer(path):
        return path
    return f"{USERS}/{pointer['code']}" if pointer else None


def user_at(path: str, doc: store.Doc | None) -> User | None:
    """The user stored at `users/{code}`, or None if there is none."""
    return User(path.partition("/")[2], doc) if doc is not None else None


def create(
    *, code: str, email: str, password_hash: str, role: str, keyring: Keyring,
    pii: dict[str, str | None], mfa_enabled: bool = False, now: float | None = None,
) -> User:
    """Create the account and its email pointer together, or neither."""
    code, email = normalize_code(code), normalize_email(email)
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    data: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "email": email,
        "role": role,
        "password_hash": password_hash,
        "mfa_enabled": mfa_enabled,
        "created_at": now or time.time(),
    }
    for name in PII_FIELDS:
        value = pii.get(name)
        data[f"{name}_enc"] = keyring.encrypt(value) if value else None
    paths = [f"{USERS}/{code}", f"{EMAILS}/{email}"]

    def decide(docs: store.Docs) -> store.Plan[User]:
        if any(docs[p] is not None for p in paths):
            return store.Plan(UserExists(f"a user with code {code} or this email exists"))
        return store.Plan(User(code, data), {paths[0]: data, paths[1]: {"code": code}})

    return store.atomic_update(paths, decide)


def decrypt_pii(user: User, keyring: Keyring | None) -> tuple[dict[str, str | None], dict[str, UndecryptableError | None]]:
    """Decrypt each PII field; a field that fails is None and its error is returned, never raised."""
    values: dict[str, str | None] = {}
    failures: dict[str, UndecryptableError | None] = {}
    for name in PII_FIELDS:
        stored = user.data.get(f"{name}_enc")
        if not stored:
            values[name] = None
            continue
        if keyring is None:
            values[name], failures[name] = None, None
            continue
        try:
            values[name] = keyring.decrypt(stored)
        except UndecryptableError as exc:
            values[name], failures[name] = None, exc
    return values, failures


def iter_all(page_size: int = 200, start_after: str | None = None) -> Iterator[User]:
    """Every user in code order, a page at a time (for operator commands)."""
    from google.cloud.firestore_v1.field_path import FieldPath

    collection = store.client().collection(USERS)
    last = start_after
    while True:
        query = collection.order_by(FieldPath.document_id()).limit(page_size)
        if last:
            query = query.start_after({FieldPath.document_id(): store.client().document(f"{USERS}/{last}")})
        page = list(query.stream())
        for snap in page:
            yield User(snap.id, snap.to_dict())
        if len(page) < page_size:
            return
        last = page[-1].id


# -- canary: proves at start-up that the deployed keyring is the one the data needs --
CANARY_PATH = "system/pii_canary"


def canary_document(keyring: Keyring) -> dict[str, str]:
    """A fresh canary encrypted with the primary key, as stored at `CANARY_PATH`."""
    return {"value": keyring.make_canary(), "kid": keyring.primary_kid}


def write_canary(keyring: Keyring) -> None:
    """Store a fresh canary (set-up and after rotation)."""
    store.client().document(CANARY_PATH).set(canary_document(keyring))


def canary_status(keyring: Keyring | None) -> str:
    """"ok", or what is wrong, for the health check. Never key material."""
    if keyring is None:
        return "keyring_unavailable"
    doc = store.get_many([CANARY_PATH])[CANARY_PATH]
    if doc is None:
        return "canary_missing"
    try:
        keyring.check_canary(str(doc.get("value", "")))
    except UndecryptableError as exc:
        log.event(
            "encryption_key_mismatch",
            f"pii-keyring cannot decrypt the canary: {exc.detail}",
            severity=logging.ERROR,
            kid=exc.kid,
            kid_present=exc.kid_present,
            primary_kid=keyring.primary_kid,
        )
        return "encryption_key_mismatch"
    return "ok"
