"""The log lines the alerts depend on are a contract.

Every log-based metric in terraform/monitoring.tf filters the functions'
structured logs (`log.event(name, ...)` -> one JSON line on stdout -> in Cloud
Run a LogEntry with `resource.type="cloud_run_revision"`, the line in
`jsonPayload`, `severity` lifted to the entry). A renamed event or field would
make a filter match nothing, and the alert built on it would stay silent.

So this module runs the real flows as real processes (functions-framework,
the local stack: Firestore emulator, local Secret Manager, the dev SMS sink,
`FaultyTwilio`, a Firestore stand-in that fails), captures what they write,
wraps each line as Cloud Logging would, and checks that

- every metric filter in the Terraform matches at least one captured line;
- every label extractor finds its field in every line its filter matches;
- every label value an alert or dashboard filters on (``metric.label.reason=
  "code_expired"``...) is a value the code really writes;
- and, as a negative control, that a filter or extractor with a renamed field
  matches nothing.

The filters are evaluated by a small, strict evaluator of the subset of the
Logging query language they use (below): anything outside it fails the test,
so filters stay in what is checked here.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tools import tf_schema

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
PROJECT = "demo-otp"

# =============================================================================== the Logging query language, a subset
#
#   expression := term { "AND" term } | term { "OR" term }   (never both at one level:
#                 in the Logging query language OR binds tighter than AND, so a mix
#                 without parentheses reads differently from what it looks like)
#   term       := "NOT" term | "(" expression ")" | path op value
#   op         := "=" | "!=" | ":" | ">=" | ">" | "<=" | "<"   (ordering: severity only)
#   value      := "quoted string" | bare_word
#   path       := resource.type | resource.labels.<name> | severity | logName
#                 | textPayload | jsonPayload.<name>[.<name>...] | labels.<name>
#
# Semantics, as documented for Cloud Logging: string comparisons are not case
# sensitive; `:` is "has" (substring); a comparison on a missing field is false
# (so `NOT a="b"` matches entries without `a`); `!=` needs the field present.

SEVERITIES = {
    "DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400,
    "ERROR": 500, "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800,
}
PATH_ROOTS = re.compile(
    r"^(resource\.type|resource\.labels\.[A-Za-z0-9_]+|severity|logName|textPayload"
    r"|jsonPayload(\.[A-Za-z_][A-Za-z0-9_]*)+|labels\.[A-Za-z0-9_./-]+)$"
)
TOKEN = re.compile(
    r"""\s*(?:
        (?P<lpar>\() | (?P<rpar>\)) |
        (?P<op>>=|<=|!=|=|:|>|<) |
        (?P<string>"(?:[^"\\]|\\.)*") |
        (?P<word>[A-Za-z0-9_./@-]+)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"AND", "OR", "NOT"}


class FilterSyntaxError(ValueError):
    """The filter uses syntax outside the subset this contract checks."""


@dataclass(frozen=True)
class Tok:
    kind: str  # lpar rpar op string word kw
    text: str


def tokenize(text: str) -> list[Tok]:
    tokens: list[Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterSyntaxError(f"unsupported syntax at {pos}: {text[pos:pos + 30]!r}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "word" and value in KEYWORDS:
            kind = "kw"
        elif kind == "word" and value.upper() in KEYWORDS:
            raise FilterSyntaxError(f"write the operator {value!r} in upper case")
        elif kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append(Tok(kind, value))
    return tokens


Predicate = Callable[[dict], bool]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str | None = None, text: str | None = None) -> Tok:
        tok = self.peek()
        if tok is None or (kind and tok.kind != kind) or (text and tok.text != text):
            raise FilterSyntaxError(f"expected {text or kind} in {self.text!r}, got {tok}")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        if not self.tokens:
            raise FilterSyntaxError("empty filter")
        pred = self.expression()
        if self.peek() is not None:
            raise FilterSyntaxError(f"unexpected {self.peek()} in {self.text!r}")
        return pred

    def expression(self) -> Predicate:
        terms = [self.term()]
        joiner = None
        while (tok := self.peek()) is not None and tok.kind == "kw" and tok.text in ("AND", "OR"):
            if joiner is not None and tok.text != joiner:
                raise FilterSyntaxError(f"AND and OR mixed without parentheses in {self.text!r}")
            joiner = self.take().text
            terms.append(self.term())
        if len(terms) == 1:
            return terms[0]
        if joiner == "AND":
            return lambda e, ts=tuple(terms): all(t(e) for t in ts)
        return lambda e, ts=tuple(terms): any(t(e) for t in ts)

    def term(self) -> Predicate:
        tok = self.peek()
        if tok is None:
            raise FilterSyntaxError(f"filter ends early: {self.text!r}")
        if tok.kind == "kw" and tok.text == "NOT":
            self.take()
            inner = self.term()
            return lambda e: not inner(e)
        if tok.kind == "lpar":
            self.take()
            inner = self.expression()
            self.take("rpar")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        path = self.take("word").text
        if not PATH_ROOTS.match(path):
            raise FilterSyntaxError(f"field {path!r} is outside the supported subset")
        op = self.take("op").text
        tok = self.peek()
        if tok is None or tok.kind not in ("string", "word"):
            raise FilterSyntaxError(f"{path}{op} needs a value (value lists are not supported) in {self.text!r}")
        value = self.take().text
        if path == "severity":
            if value.upper() not in SEVERITIES:
                raise FilterSyntaxError(f"unknown severity {value!r}")
            rank = SEVERITIES[value.upper()]
            compare = {
                "=": lambda a: a == rank, "!=": lambda a: a != rank, ">=": lambda a: a >= rank,
                ">": lambda a: a > rank, "<=": lambda a: a <= rank, "<": lambda a: a < rank,
            }.get(op)
            if compare is None:
                raise FilterSyntaxError(f"severity{op} is not supported")
            return lambda e: compare(SEVERITIES.get(str(e.get("severity", "DEFAULT")).upper(), 0))
        if op not in ("=", "!=", ":"):
            raise FilterSyntaxError(f"{op} is only supported on severity, not on {path}")
        want = value.lower()

        def check(entry: dict) -> bool:
            found = lookup(entry, path)
            if found is None:
                return False
            text = scalar_text(found).lower()
            if op == "=":
                return text == want
            if op == "!=":
                return text != want
            return want in text

        return check


def compile_filter(text: str) -> Predicate:
    return _Parser(text).parse()


def lookup(entry: dict, path: str) -> Any:
    node: Any = entry
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


EXTRACT = re.compile(r"^EXTRACT\((jsonPayload(?:\.[A-Za-z_][A-Za-z0-9_]*)+|resource\.labels\.[A-Za-z0-9_]+)\)$")


def extract(extractor: str, entry: dict) -> str | None:
    """A label extractor's value for `entry` (None if the field is absent or null)."""
    match = EXTRACT.match(extractor)
    if not match:
        raise FilterSyntaxError(f"label extractor {extractor!r}: only EXTRACT(<field>) is supported")
    found = lookup(entry, match.group(1))
    return None if found is None else scalar_text(found)


# =============================================================================== the Terraform side


def hcl_literal(value: Any, what: str) -> str:
    """A quoted HCL string as Terraform evaluates it; interpolation is refused (not a literal)."""
    if not isinstance(value, str):
        raise AssertionError(f"{what}: not a string literal: {value!r}")
    if value.startswith("<<") or "${" in value.replace("$${", "") or "%{" in value.replace("%%{", ""):
        raise AssertionError(f"{what}: must be a plain string literal, got {value!r}")
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}[nxt])
            i += 2
        elif value.startswith("$${", i) or value.startswith("%%{", i):
            out.append(value[i + 1 : i + 3])
            i += 3
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _parsed(name: str) -> dict:
    return tf_schema.parse_hcl((TERRAFORM / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Metric:
    name: str
    filter: str
    labels: dict[str, str]  # label key -> extractor


def log_metrics() -> dict[str, Metric]:
    """The log-based metrics exactly as terraform/monitoring.tf deploys them."""
    doc = _parsed("monitoring.tf")
    local = next(group["log_metrics"] for group in doc["locals"] if "log_metrics" in group)
    resource = next(g["google_logging_metric"]["event"] for g in doc["resource"] if "google_logging_metric" in g)
    # What is evaluated here is what is deployed: the resource takes both from the map, unchanged.
    assert resource["for_each"] == "${local.log_metrics}"
    assert resource["filter"] == "${each.value.filter}"
    assert resource["label_extractors"] == "${{for key, label in each.value.labels : key => label.extractor}}"
    metrics = {}
    for name, spec in local.items():
        if name.startswith("__"):
            continue
        labels = {key: hcl_literal(label["extractor"], f"{name}.{key}") for key, label in spec["labels"].items()}
        metrics[name] = Metric(name, hcl_literal(spec["filter"], f"{name}.filter"), labels)
    return metrics


METRICS = log_metrics()

METRIC_TYPE = re.compile(r'metric\.type="(?:logging\.googleapis\.com/user/otplogin/|\$\{local\.log_metric_types\["?)([a-z_]+)')
LABEL_EQ = re.compile(r'metric\.label\.([a-z_]+)=(?:"([^"]*)"|one_of\(([^)]*)\))')


def label_constraints(filter_text: str) -> tuple[str, dict[str, set[str]]] | None:
    """(log metric, {label: values}) that a Monitoring filter selects, or None for a built-in metric."""
    metric = METRIC_TYPE.search(filter_text)
    if not metric:
        return None
    wanted: dict[str, set[str]] = {}
    for key, single, many in LABEL_EQ.findall(filter_text):
        values = {single} if single else set(re.findall(r'"([^"]*)"', many))
        wanted.setdefault(key, set()).update(v for v in values if "${" not in v)  # a Terraform value: per input
    return metric.group(1), wanted


def _filters(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("filter", "denominator_filter") and isinstance(value, str):
                yield value
            else:
                yield from _filters(value)
    elif isinstance(node, list):
        for value in node:
            yield from _filters(value)


def monitoring_filters() -> Iterator[tuple[str, str]]:
    """(where, filter) of every alert condition and dashboard chart (HCL strings as python-hcl2 reads them)."""
    for name in ("monitoring_alerts.tf", "monitoring_uptime.tf"):
        for text in _filters(_parsed(name).get("resource", [])):
            yield name, text.replace('\\"', '"')
    dashboard = json.loads((TERRAFORM / "dashboards" / "otplogin.json").read_text(encoding="utf-8"))
    for text in _filters(dashboard):
        yield "dashboards/otplogin.json", text


# =============================================================================== running the real flows


def log_entry(line: str, service: str) -> dict:
    """One stdout line as Cloud Run's logging agent stores it."""
    entry: dict[str, Any] = {
        "logName": f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "service_name": service, "revision_name": f"{service}-00001-abc", "configuration_name": service,
                "location": "europe-west1", "project_id": PROJECT,
            },
        },
    }
    try:
        payload = json.loads(line)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        entry["textPayload"] = line
        entry["severity"] = "DEFAULT"
        return entry
    entry["severity"] = str(payload.pop("severity", "DEFAULT")).upper()
    for special in [k for k in payload if k.startswith("logging.googleapis.com/")]:
        entry[special.rsplit("/", 1)[1]] = payload.pop(special)
    entry["jsonPayload"] = payload
    return entry


class FailingFirestore:
    """A gRPC server in Firestore's place that fails every call with UNKNOWN (a backend error)."""

    def __init__(self) -> None:
        import grpc

        from tests.support.ports import free_port

        class Fail(grpc.GenericRpcHandler):
            def service(self, details):
                def fail(request, context):
                    context.abort(grpc.StatusCode.UNKNOWN, "backend error")

                streaming = details.method.endswith(("BatchGetDocuments", "RunQuery", "Listen"))
                return (grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler)(fail)

        self.host = f"127.0.0.1:{free_port()}"
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[Fail()])
        self.server.add_insecure_port(self.host)

    def __enter__(self) -> FailingFirestore:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(0)


PASSWORD = "correct horse battery staple"
PHONE_CD, PHONE_MA = "+243812345678", "+212612345678"
PHONE_FAIL, PHONE_CAPPED, PHONE_MFA = "+243812345679", "+243812345677", "+243812345670"
PHONE_G1, PHONE_G2, PHONE_G3 = "+243815550001", "+243815550002", "+243825550003"  # blocks 8155, 8255
SERVICE = {"send_otp": "send-otp", "verify_otp": "verify-otp", "login": "login"}


def post(proc, body: dict, ip: str = "203.0.113.10") -> requests.Response:
    return requests.post(proc.url, json=body, headers={"X-Forwarded-For": ip}, timeout=30)


@pytest.fixture(scope="module")
def captured(firestore_emulator, secret_manager, tmp_path_factory) -> list[dict]:
    """Run every flow the alerts care about; return the captured lines as LogEntries."""
    from otplogin import passwords, runtime, store, users
    from otplogin.keyring import generate_key
    from tests.support.apps import outbox_codes
    from tests.support.functions import FunctionProcess
    from tests.support.prism import FaultyTwilio
    from tests.support.secret_manager import LocalSecretManager

    logs = tmp_path_factory.mktemp("log-contract")
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        "SECRET_MANAGER_EMULATOR_HOST": secret_manager.host,
        "SMS_PROVIDER": "dev_outbox",
        "OTP_ALLOWED_COUNTRIES": "CD,MA",
        "PYTHONUNBUFFERED": "1",  # every line reaches the log file, even if the process is killed
    }
    procs: dict[str, tuple[FunctionProcess, str]] = {}
    with (
        pytest.MonkeyPatch.context() as mp,
        FaultyTwilio("429") as faulty,  # a definite refusal: the quota is given back
        FailingFirestore() as failing_firestore,
        LocalSecretManager(PROJECT) as other_sm,
    ):
        for key, value in env.items():
            mp.setenv(key, value)
        firestore_emulator.clear()
        runtime.reset()
        keyring = runtime.pii_keyring()
        for n, mfa, phone in ((1, False, PHONE_CD), (2, True, PHONE_MFA), (3, False, PHONE_CD)):
            users.create(
                code=f"MAN000{n}RAB", email=f"user{n}@example.com", password_hash=passwords.hash_password(PASSWORD),
                role="user", keyring=keyring, pii={"phone": phone, "address": "Kinshasa", "whatsapp": phone},
                mfa_enabled=mfa,
            )
        users.write_canary(keyring)
        # A second Secret Manager for login: the pepper and Twilio, but neither the
        # JWT keys nor the PII keyring yet (a secret that is missing).
        for sid in (runtime.OTP_PEPPER, *runtime.TWILIO_SECRETS):
            other_sm.add(sid, runtime.secret(sid))
        jwt_keys = runtime.secret(runtime.JWT_SIGNING_KEYS)

        specs = {
            # A project-wide cap of 2 codes an hour (2 shards of 1), reached by this flow's own sends.
            "send": ("send_otp", env | {"OTP_SENDS_GLOBAL_PER_HOUR": "2", "GUARD_RANGE_CAP_PERCENT": "100"}),
            # The send guard with tiny free allowances and the proof-of-work challenge.
            "send_guard": ("send_otp", env | {"GUARD_CHALLENGES": "altcha", "GUARD_RANGE_FREE_PER_HOUR": "1",
                                              "GUARD_CLIENT_FREE_PER_HOUR": "1"}),
            "send_twilio": ("send_otp", env | {"SMS_PROVIDER": "twilio", "TWILIO_API_BASE": faulty.base_url}),
            "verify": ("verify_otp", env),
            "login": ("login", env | {"LOGINS_PER_IP_PER_HOUR": "6"}),
            "login_other_keys": ("login", env | {"SECRET_MANAGER_EMULATOR_HOST": other_sm.host}),
            "verify_no_firestore": ("verify_otp", env | {"FIRESTORE_EMULATOR_HOST": failing_firestore.host}),
        }
        for key, (function, proc_env) in specs.items():
            procs[key] = (FunctionProcess(function, proc_env, log_path=logs / f"{key}.log"), SERVICE[function])
        with futures.ThreadPoolExecutor(len(procs)) as pool:
            list(pool.map(lambda p: p[0].start(timeout=60), procs.values()))
        try:
            run_flows({k: p for k, (p, _) in procs.items()}, other_sm, jwt_keys, outbox_codes, store, generate_key)
        finally:
            stoppers = [threading.Thread(target=p.stop) for p, _ in procs.values()]
            for t in stoppers:
                t.start()
            for t in stoppers:
                t.join()
            runtime.reset()

    entries = []
    for proc, service in procs.values():
        for line in proc.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                entries.append(log_entry(line, service))
    return entries


def run_flows(p: dict, other_sm, jwt_keys: str, outbox_codes, store, generate_key) -> None:
    send, send_twilio, verify, login = p["send"], p["send_twilio"], p["verify"], p["login"]
    if time.time() % 3600 > 3590:  # the hourly send cap below must not roll over mid-flow
        time.sleep(3600 - time.time() % 3600 + 1)

    # SMS provider refusing: 502, otp_delivery_failed (the quota is given back).
    assert post(send_twilio, {"phone": PHONE_FAIL}).status_code == 502
    # Sends, and the resend cooldown.
    assert post(send, {"phone": PHONE_CD, "locale": "fr"}).status_code == 202
    assert post(send, {"phone": PHONE_CD}).json()["error"]["limit"] == "resend_cooldown"
    assert post(send, {"phone": PHONE_MA, "channel": "whatsapp"}).status_code == 202
    # The project-wide cap (2 an hour on this instance): rate_limited send_global.
    assert post(send, {"phone": PHONE_CAPPED}).json()["error"]["limit"] == "send_global"
    # The send guard: an unconverted block, then an address whose codes are not verified, each
    # answered with a challenge (rate_limited, action challenge) instead of a refusal.
    guard = p["send_guard"]
    assert post(guard, {"phone": PHONE_G1}, ip="192.0.2.31").status_code == 202
    assert post(guard, {"phone": PHONE_G2}, ip="192.0.2.32").json()["error"]["limit"] == "send_range"
    assert post(guard, {"phone": PHONE_G3}, ip="192.0.2.31").json()["error"]["limit"] == "send_ip"

    # Verify: wrong, right, used again (code_expired), and an attempt budget spent.
    code = outbox_codes(store.client(), PHONE_CD)[-1]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert post(verify, {"phone": PHONE_CD, "code": wrong}).json()["error"]["code"] == "invalid_code"
    assert post(verify, {"phone": PHONE_CD, "code": code}).status_code == 200
    assert post(verify, {"phone": PHONE_CD, "code": code}).json()["error"]["code"] == "code_expired"
    code_ma = outbox_codes(store.client(), PHONE_MA)[-1]
    wrong_ma = f"{(int(code_ma) + 1) % 10**6:06d}"
    for _ in range(5):
        assert post(verify, {"phone": PHONE_MA, "code": wrong_ma}).status_code == 401
    assert post(verify, {"phone": PHONE_MA, "code": code_ma}).json()["error"]["code"] == "too_many_attempts"

    # Login: success, unknown user, lockout (of the guessing client), then the per-IP failure cap (6 an hour here).
    signed_in = post(login, {"code": "MAN0001RAB", "password": PASSWORD})
    assert signed_in.status_code == 200
    # A refresh token rotated twice, then the first one presented again: reuse, the family revoked.
    first = signed_in.json()["refresh_token"]
    second = post(login, {"grant_type": "refresh_token", "refresh_token": first}).json()["refresh_token"]
    assert post(login, {"grant_type": "refresh_token", "refresh_token": second}).status_code == 200
    reused = post(login, {"grant_type": "refresh_token", "refresh_token": first})
    assert reused.json()["error"]["code"] == "invalid_grant"
    assert post(login, {"email": "nobody@example.com", "password": "x"}, ip="198.51.100.1").status_code == 401
    for _ in range(5):
        assert post(login, {"code": "MAN0001RAB", "password": "wrong"}, ip="198.51.100.2").status_code == 401
    locked = post(login, {"code": "MAN0001RAB", "password": PASSWORD}, ip="198.51.100.2")
    assert locked.json()["error"]["code"] == "account_locked"
    for i in range(5):
        post(login, {"email": f"nobody{i}@example.com", "password": "x"}, ip="198.51.100.1")
    assert post(login, {"email": "nobody@example.com", "password": "x"}, ip="198.51.100.1").json()["error"]["limit"] == "login_ip"

    # Second factor: password, code by SMS, verify_otp completes the login.
    step = post(login, {"email": "user2@example.com", "password": PASSWORD}).json()
    assert step["mfa_required"] is True
    code_mfa = outbox_codes(store.client(), PHONE_MFA)[-1]
    assert post(verify, {"mfa_token": step["mfa_token"], "code": code_mfa}).status_code == 200

    # Login against a Secret Manager without pii-keyring and without jwt-signing-keys:
    # the PII degrades to null (pii_undecryptable), the token cannot be signed (503).
    other = p["login_other_keys"]
    assert requests.get(f"{other.url}/healthz", timeout=30).status_code == 503
    assert post(other, {"code": "MAN0003RAB", "password": PASSWORD}).status_code == 503
    # Then a keyring that lacks the key the data needs: key mismatch at the health check,
    # and every PII field undecryptable at login (which still succeeds).
    other_sm.add("jwt-signing-keys", jwt_keys)
    other_sm.add("pii-keyring", json.dumps({"keys": [generate_key()]}))
    health = requests.get(f"{other.url}/healthz", timeout=30).json()
    assert health["checks"]["pii_keyring"] == "encryption_key_mismatch", health
    answer = post(other, {"code": "MAN0003RAB", "password": PASSWORD}).json()
    assert answer["unavailable_fields"] == ["address", "phone", "whatsapp"], answer

    # Firestore failing under verify_otp: 503, firestore_unavailable.
    assert post(p["verify_no_firestore"], {"phone": PHONE_CD, "code": "123456"}).status_code == 503


# =============================================================================== the contract


def matching(metric: Metric, entries: list[dict]) -> list[dict]:
    pred = compile_filter(metric.filter)
    return [e for e in entries if pred(e)]


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_filter_matches_what_the_code_writes(captured, name):
    metric = METRICS[name]
    assert matching(metric, captured), (
        f"log-based metric {name!r} matches none of the {len(captured)} lines the functions wrote: "
        f"its filter {metric.filter!r} no longer fits the code (a renamed event or field?)"
    )


@pytest.mark.parametrize("name", sorted(n for n, m in METRICS.items() if m.labels))
def test_every_label_extractor_finds_its_field(captured, name):
    metric = METRICS[name]
    for entry in matching(metric, captured):
        for key, extractor in metric.labels.items():
            value = extract(extractor, entry)
            assert value, f"{name}: label {key} ({extractor}) is empty in {entry['jsonPayload']}"


def label_values(metric: Metric, entries: list[dict]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {key: set() for key in metric.labels}
    for entry in matching(metric, entries):
        for key, extractor in metric.labels.items():
            seen[key].add(extract(extractor, entry))
    return seen


def test_label_values_that_alerts_and_the_dashboard_select_are_written_by_the_code(captured):
    checked = 0
    for where, text in monitoring_filters():
        found = label_constraints(text)
        if found is None:
            continue
        name, wanted = found
        assert name in METRICS, f"{where}: {text!r} reads a log-based metric that does not exist"
        seen = label_values(METRICS[name], captured)
        for key, values in wanted.items():
            assert key in METRICS[name].labels, f"{where}: {name} has no label {key!r}"
            assert values <= seen[key], f"{where}: {name}.{key} in {sorted(values)}, the code writes {sorted(seen[key])}"
            checked += 1
    assert checked >= 8


def test_the_flows_produce_every_reason_limit_and_outcome(captured):
    """The dashboards break these down by label: each value must really occur."""
    assert {"invalid_code", "code_expired", "too_many_attempts"} <= label_values(METRICS["otp_rejected"], captured)["reason"]
    assert {"resend_cooldown", "send_global", "send_range", "send_ip", "login_ip"} <= label_values(
        METRICS["rate_limited"], captured
    )["limit"]
    assert {"pii-keyring", "jwt-signing-keys"} <= label_values(METRICS["secret_load_failed"], captured)["secret"]
    assert label_values(METRICS["otp_deliveries"], captured)["outcome"] == {"otp_sent", "otp_delivery_failed"}
    # Every guard decision names its reason and what was answered; a challenge is never logged itself.
    guard = [e["jsonPayload"] for e in matching(METRICS["rate_limited"], captured) if "action" in e["jsonPayload"]]
    assert {(g["reason"], g["action"]) for g in guard} >= {("send_range", "challenge"), ("send_ip", "challenge"),
                                                           ("send_global", "refuse")}
    assert all(g["range"] and g["trust"] and "challenge" not in g for g in guard if g["reason"].startswith("send_"))
    sent = [e["jsonPayload"] for e in matching(METRICS["otp_sent"], captured)]
    assert {"new", "known"} <= {s.get("trust") for s in sent} and all(s.get("range") for s in sent)
    assert label_values(METRICS["otp_verifications"], captured)["outcome"] == {"otp_verified", "otp_rejected"}
    assert {"phone", "login"} <= label_values(METRICS["otp_sent"], captured)["purpose"]
    assert {"CD", "MA"} <= label_values(METRICS["otp_sent"], captured)["country"]
    assert {"sms", "whatsapp"} <= label_values(METRICS["otp_sent"], captured)["channel"]


def test_event_lines_carry_no_full_phone_or_password(captured):
    # (The development SMS sink, never deployed, logs whole messages on purpose.)
    events = [e["jsonPayload"] for e in captured if "event" in e.get("jsonPayload", {})]
    assert len(events) > 40
    text = json.dumps(events)
    for phone in (PHONE_CD, PHONE_MA, PHONE_FAIL, PHONE_MFA, PHONE_G1, PHONE_G2, PHONE_G3):
        assert phone not in text
    assert PASSWORD not in text


def test_a_renamed_field_or_event_matches_nothing(captured):
    sent = METRICS["otp_sent"]
    assert matching(sent, captured)
    for broken in (
        sent.filter.replace("jsonPayload.event", "jsonPayload.event_name"),
        sent.filter.replace('"otp_sent"', '"otp_send"'),
        sent.filter.replace('resource.type="cloud_run_revision"', 'resource.type="cloud_function"'),
    ):
        assert broken != sent.filter
        assert not matching(Metric("broken", broken, {}), captured), broken
    renamed = "EXTRACT(jsonPayload.country_code)"
    assert all(extract(renamed, e) is None for e in matching(sent, captured))


# =============================================================================== the evaluator itself (no emulator)


def entry(severity="INFO", **payload) -> dict:
    return {"resource": {"type": "cloud_run_revision", "labels": {"service_name": "login"}}, "severity": severity,
            "jsonPayload": payload}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('resource.type="cloud_run_revision" AND jsonPayload.event="otp_sent"', True),
        ('resource.type="cloud_run_revision" AND jsonPayload.event="OTP_SENT"', True),  # not case sensitive
        ('jsonPayload.event="otp_verified"', False),
        ('jsonPayload.event="otp_verified" OR jsonPayload.event="otp_sent"', True),
        ('resource.type="cloud_run_revision" AND (jsonPayload.event="x" OR jsonPayload.country="CD")', True),
        ('NOT jsonPayload.event="otp_sent"', False),
        ('NOT jsonPayload.missing="x"', True),
        ('jsonPayload.missing!="x"', False),
        ('jsonPayload.country!="MA"', True),
        ("jsonPayload.phone:243", True),
        ("severity>=ERROR", False),
        ("severity>=INFO", True),
        ('severity="info"', True),
        ('resource.labels.service_name="login"', True),
        ('jsonPayload.nested.kid="k1"', True),
        ("jsonPayload.mfa=true", True),
    ],
)
def test_evaluator(text, expected):
    e = entry(event="otp_sent", country="CD", phone="+243*******78", mfa=True, nested={"kid": "k1"})
    assert compile_filter(text)(e) is expected


@pytest.mark.parametrize(
    "text",
    [
        'jsonPayload.a="1" AND jsonPayload.b="2" OR jsonPayload.c="3"',  # OR binds tighter than AND: refused
        'jsonPayload.event=("a" OR "b")',  # value lists: not in the subset
        'jsonPayload.event =~ "otp_.*"',  # regular expressions
        '"otp_sent"',  # global restrictions
        'protoPayload.status="x"',  # unknown root
        'jsonPayload.event="otp_sent" and severity>=ERROR',  # lower-case operator
        'jsonPayload.count>3',  # ordering outside severity
        'severity>=LOUD',
        'timestamp>="2024-01-01"',
        'jsonPayload.event="otp_sent" AND',
        'SEARCH("otp")',
        "",
    ],
)
def test_unknown_syntax_is_refused(text):
    with pytest.raises(FilterSyntaxError):
        compile_filter(text)


def test_only_extract_is_supported_as_label_extractor():
    assert extract("EXTRACT(jsonPayload.country)", entry(country="CD")) == "CD"
    assert extract("EXTRACT(jsonPayload.country)", entry()) is None
    with pytest.raises(FilterSyntaxError):
        extract('REGEXP_EXTRACT(jsonPayload.phone, "\\\\+(\\\\d{3})")', entry(phone="+243"))


def test_cloud_logging_wrapping():
    line = json.dumps({"severity": "ERROR", "message": "m", "event": "e", "logging.googleapis.com/trace": "t"})
    wrapped = log_entry(line, "login")
    assert wrapped["severity"] == "ERROR" and wrapped["trace"] == "t"
    assert wrapped["jsonPayload"] == {"message": "m", "event": "e"}
    assert wrapped["resource"]["labels"]["service_name"] == "login"
    assert log_entry(" * Serving Flask app", "login")["textPayload"] == " * Serving Flask app"


def test_terraform_strings_are_read_as_terraform_reads_them():
    assert hcl_literal('a=\\"b\\" AND c', "x") == 'a="b" AND c'
    with pytest.raises(AssertionError):
        hcl_literal('a="${var.x}"', "x")
    assert all(m.filter.startswith('resource.type="cloud_run_revision" AND ') for m in METRICS.values())
    for metric in METRICS.values():
        compile_filter(metric.filter)  # every deployed filter is inside the subset
