"""Schemathesis against openapi.yaml: every operation of every function, positive and negative data.

Checks on every answer: no 5xx, the status is one the operation lists, the
content type, the required headers (`Retry-After` on 429, `Allow` on 405,
`Cache-Control`) and the body schema. Negative data (what the spec says is
invalid) must be rejected with a 4xx; positive data must be accepted: answered
with one of the statuses `ACCEPTED` lists for the operation (a refusal the
request's validity cannot prevent, such as a wrong code or a rate limit, counts
as accepted; a 400 does not).

Positive data is spec-valid and also meaningful: phones are CD/MA mobiles
(plus a few foreign ones) from `phonenumbers`' metadata, codes have the
configured length, and the flows that need state run in scenarios that seed it
first (a code that was really sent, a login's `mfa_token`, a user who exists,
a spent attempt budget). Each answer's status and error code are recorded per
operation and mode, and every status the spec documents for an operation must
be reached, by the fuzzer or by a dedicated test named in `DEDICATED`. A mode
that generates nothing is "not run", a failure unless `UNSATISFIABLE` gives
the reason by design.

`make test` drives the functions in-process (functions-framework apps behind
a WSGI dispatcher that maps `/send_otp/...` to send_otp's root, the
`cloudfunctions.net/FUNCTION` form of the URLs the spec uses); the `prove` run
drives one real functions-framework process per function over loopback HTTP.
"""

from __future__ import annotations

import ast
import functools
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from otplogin import passwords, runtime, store, users
from tests.prove import helpers, numbers
from tests.prove.helpers import make_service
from tests.support.apps import FUNCTIONS, REPO, outbox_codes
from tests.support.fakes import Outbox

SPEC = REPO / "openapi.yaml"
CONFORMANCE = REPO / "tests" / "integration" / "test_openapi_conformance.py"
ORIGIN = "https://app.example.cd"
# The guard answers a challenge where a limit would refuse (403 challenge_required); CORS has an allowed origin.
FUZZ_ENV = {"GUARD_CHALLENGES": "altcha", "CORS_ALLOWED_ORIGINS": ORIGIN}
PASSWORD = "correct horse battery staple"
CLIENTS = [f"198.51.100.{i}" for i in range(1, 9)]  # few enough that per-client limits bind
PHONES = numbers.mobiles(numbers.ALLOWED, 1500)
FOREIGN = numbers.mobiles(frozenset({"FR", "NG"}), 10)
CODE_LENGTH = 6

schemathesis.openapi.format("phone", st.sampled_from(PHONES[:200] + FOREIGN))
schemathesis.openapi.format("otp-code", st.from_regex(rf"\A[0-9]{{{CODE_LENGTH}}}\Z"))

# Positive data must get one of these: success, or a refusal valid data cannot avoid.
ACCEPTED = {
    "send_otp": [202, 403, 429],  # 403 country_not_allowed / challenge_required, 429 rate_limited
    "verify_otp": [200, 401, 429],  # a wrong, expired or never-sent code; a spent budget
    "login": [200, 401, 403, 429],  # unknown user or wrong password; foreign phone; locked
}

# Statuses no fuzzed request can cause on a healthy stack, each reached by a dedicated test instead.
_C = "tests/integration/test_openapi_conformance.py::"
_INTERNAL = _C + "test_send_internal_error_is_500_without_detail"
_UNAVAILABLE = _C + "test_bad_configuration_is_503_unavailable"
_HEALTH_DOWN = _C + "test_health_unavailable_names_the_missing_secret"
DEDICATED: dict[str, dict[str, str]] = {
    "POST /send_otp": {"413": _C + "test_send_errors", "415": _C + "test_send_errors", "500": _INTERNAL,
                       "502": _C + "test_send_delivery_failure_is_502", "503": _UNAVAILABLE},
    "POST /verify_otp": {"413": _C + "test_verify_errors", "415": _C + "test_verify_errors",
                         "503": _C + "test_firestore_refusal_is_503_with_retry_after"},
    "POST /login": {"413": _C + "test_login_errors", "415": _C + "test_login_errors",
                    "502": _C + "test_login_second_factor_delivery_failure_is_502", "503": _UNAVAILABLE},
    "POST /login/logout": {"413": _C + "test_logout_errors", "415": _C + "test_logout_errors",
                           "503": _C + "test_logout_with_a_bad_configuration_is_503"},
    **{f"GET /{f}": {"503": _HEALTH_DOWN} for f in FUNCTIONS},
    **{f"GET /{f}/healthz": {"503": _HEALTH_DOWN} for f in FUNCTIONS},
    **{f"OPTIONS /{f}": {"503": _UNAVAILABLE} for f in FUNCTIONS},
}
# 500 `internal` is the last resort for a bug, shared by every operation (http.py's one handler wrapper):
# reached once, on send_otp, by a forced bug; elsewhere it is documented and not reachable on purpose.
BY_DESIGN = {"500": "last resort for a bug (one shared wrapper); forced once by " + _INTERNAL}
# Not-allowed methods answer 503 only when the configuration is broken, like every answer.
for _f in FUNCTIONS:
    for _m in ("PUT", "PATCH", "DELETE"):
        DEDICATED[f"{_m} /{_f}"] = {"503": _UNAVAILABLE}
DEDICATED["GET /login/.well-known/jwks.json"] = {"503": _UNAVAILABLE}
# Modes that generate nothing, and why that is right.
UNSATISFIABLE = {"negative": "no parameters and no body: there is nothing to make invalid"}


def negative_data_rejected(ctx, response, case):
    """schemathesis' negative_data_rejection, also accepting 413: an invalid body can be invalid by being too big."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


POSITIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                   response_headers_conformance, response_schema_conformance, positive_data_acceptance]
NEGATIVE_CHECKS = [*POSITIVE_CHECKS[:-1], negative_data_rejected]
STATS: dict[str, dict[str, Any]] = {}
HTTP_METHODS = ("get", "post", "put", "patch", "delete", "options")


@functools.cache
def spec_document() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())


def accepted_statuses() -> dict[str, list[int]]:
    """By operationId, what answers valid data: `ACCEPTED` for the POSTs; an operation without input has
    nothing to get wrong, so every status it documents below 500 (405 for a method not allowed)."""
    spec = spec_document()
    out = {}
    for item in spec["paths"].values():
        for method, op in item.items():
            if method in HTTP_METHODS:
                out[op["operationId"]] = ACCEPTED.get(op["operationId"]) or [
                    int(s) for s in op["responses"] if int(s) < 500]
    return out


@functools.cache
def load_schema():
    # No NUL in strings: the spec's "Bodies" answers those 400 (a documented rule no schema keyword can say).
    config = SchemathesisConfig.from_dict({"generation": {"allow-x00": False}, "operations": [
        {"include-operation-id": op, "checks": {"positive_data_acceptance": {"expected-statuses": statuses}}}
        for op, statuses in accepted_statuses().items()
    ]})
    return schemathesis.openapi.from_path(str(SPEC), config=config)


def operations() -> list[tuple[str, str]]:
    ops = []
    for result in load_schema().get_all_operations():
        op = result.ok()
        ops.append((op.path, op.method.upper()))
    return ops


OPERATIONS = operations()


def documented_statuses() -> dict[str, list[str]]:
    """Every status openapi.yaml lists, by operation (`METHOD /path`)."""
    spec = spec_document()
    return {f"{method.upper()} {path}": sorted(str(s) for s in op["responses"])
            for path, item in spec["paths"].items() for method, op in item.items()
            if method in HTTP_METHODS}


def function_of(path: str) -> str:
    return path.strip("/").split("/", 1)[0]


def strip_function(url: str, path_template: str) -> str:
    """`http://h/send_otp/healthz` -> `/healthz` (a function is served at its URL's root)."""
    function = function_of(path_template)
    rest = url.split("://", 1)[1].split("/", 1)[1] if "/" in url.split("://", 1)[1] else ""
    rest = "/" + rest
    assert rest.startswith(f"/{function}")
    return rest[len(function) + 1:] or "/"


def mount(apps: dict):
    """A WSGI app serving each of `apps` under its prefix, at the prefix itself too (no redirect)."""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        for prefix, target in apps.items():
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):] or "/"
                return target(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such function"]

    return app


@dataclass
class Answer:
    """What the harness needs of an answer, whichever transport sent it."""

    status: int
    body: Any


class InProcess:
    """The three functions in-process behind one WSGI app, mounted at /send_otp, /verify_otp, /login."""

    def __init__(self) -> None:
        import functions_framework

        apps = {
            f"/{name}": functions_framework.create_app(target=name, source=str(REPO / "functions" / name / "main.py"))
            for name in FUNCTIONS
        }
        self.app = mount(apps)
        self.clients = {name: app.test_client() for name, app in apps.items()}

    def send(self, case):
        return case.call(app=self.app)

    def post(self, function: str, body: dict, client: str) -> Answer:
        r = self.clients[f"/{function}"].post("/", json=body, headers={"X-Forwarded-For": client})
        return Answer(r.status_code, r.get_json(silent=True))


class Processes:
    """One real functions-framework process per function, requests sent over loopback."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.session = requests.Session()

    def send(self, case):
        kwargs = case.as_transport_kwargs(base_url="http://function.invalid")
        path = strip_function(kwargs.pop("url"), case.operation.path)
        kwargs["url"] = self.urls[function_of(case.operation.path)] + path
        kwargs.setdefault("timeout", 30)
        kwargs.pop("cert", None)
        return self.session.request(**kwargs)

    def post(self, function: str, body: dict, client: str) -> Answer:
        r = self.session.post(self.urls[function] + "/", json=body, headers={"X-Forwarded-For": client}, timeout=30)
        return Answer(r.status_code, r.json())


# ----------------------------------------------------------------- seeded state

class Seeds:
    """State a positive request needs to reach success: codes really sent, users, mfa tokens.

    Codes are written the way the prove helpers do (the library's OtpService on the same
    Firestore and pepper, guard off, its own recording sender); users through `users.create`;
    an mfa_token by a real login through the target."""

    def __init__(self, target) -> None:
        self.target = target
        self.phones = itertools.cycle(PHONES[200:])  # never the ones the fuzzer draws: fresh budgets
        self.ids = itertools.count()
        self.outbox = Outbox()
        self.service = make_service(time.time, self.outbox, guard_enabled=False)
        self.password_hash = passwords.hash_password(PASSWORD)
        # Seeding comes from addresses of its own, one each, so no per-client limit binds on it.
        self.addresses = (f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" for n in itertools.count(1))

    def sent_code(self) -> tuple[str, str]:
        phone = next(self.phones)
        self.service.send(phone, "sms", "en", next(self.addresses))
        return phone, self.outbox.last_code()

    def user(self, *, mfa: bool = False, phone: str | None = None) -> dict[str, str]:
        n = next(self.ids)
        stamp = time.time_ns() % 10**9
        ident = {"code": f"FZ{n:04d}{stamp:09d}", "email": f"fuzz{n}.{stamp}@example.cd", "phone": phone or next(self.phones)}
        users.create(code=ident["code"], email=ident["email"], password_hash=self.password_hash, role="user",
                     keyring=runtime.pii_keyring(), pii={"phone": ident["phone"], "address": None, "whatsapp": None},
                     mfa_enabled=mfa)
        return ident

    def refresh_token(self) -> str:
        """A real password sign-in's refresh token, unused."""
        ident = self.user()
        answer = self.target.post("login", {"email": ident["email"], "password": PASSWORD}, next(self.addresses))
        assert answer.status == 200 and "refresh_token" in answer.body, answer.body
        return str(answer.body["refresh_token"])

    def mfa_token(self) -> tuple[str, str]:
        """A real login's mfa_token and the second-factor code the dev outbox received for it."""
        ident = self.user(mfa=True)
        answer = self.target.post("login", {"email": ident["email"], "password": PASSWORD}, next(self.addresses))
        assert answer.status == 200 and answer.body.get("mfa_required"), answer.body
        return answer.body["mfa_token"], outbox_codes(store.client(), ident["phone"])[-1]


def _identify(body: dict, ident: dict[str, str]) -> None:
    """Make a login body a password sign-in of a seeded user, keeping which identifier kind it had."""
    body.pop("grant_type", None)  # a generated refresh grant becomes a password sign-in
    body.pop("refresh_token", None)
    body.setdefault("password", PASSWORD)
    kind = "code" if "code" in body else "email"
    body.pop("email", None)
    body.pop("code", None)
    body[kind] = ident[kind]


Scenario = Callable[[Seeds, dict, str], None]


def _verify_phone(seeds: Seeds, body: dict, client: str) -> None:
    body.pop("mfa_token", None)
    body.setdefault("phone", PHONES[0])


def _verify_sent(seeds: Seeds, body: dict, client: str) -> None:
    body.pop("mfa_token", None)
    body["phone"], body["code"] = seeds.sent_code()


def _verify_wrong(seeds: Seeds, body: dict, client: str) -> None:
    body.pop("mfa_token", None)
    body["phone"], real = seeds.sent_code()
    if body["code"] == real:
        body["code"] = f"{(int(real) + 1) % 10**CODE_LENGTH:0{CODE_LENGTH}d}"


def _verify_spent(seeds: Seeds, body: dict, client: str) -> None:
    _verify_wrong(seeds, body, client)
    for _ in range(helpers.settings().max_attempts_per_code):
        seeds.target.post("verify_otp", {"phone": body["phone"], "code": body["code"]}, client)


def _verify_mfa(seeds: Seeds, body: dict, client: str) -> None:
    body.pop("phone", None)
    body["mfa_token"], body["code"] = seeds.mfa_token()


def _login_user(seeds: Seeds, body: dict, client: str) -> None:
    _identify(body, seeds.user())
    body["password"] = PASSWORD


def _login_mfa(seeds: Seeds, body: dict, client: str) -> None:
    _identify(body, seeds.user(mfa=True))
    body["password"] = PASSWORD


def _login_foreign(seeds: Seeds, body: dict, client: str) -> None:
    _identify(body, seeds.user(mfa=True, phone=FOREIGN[0]))
    body["password"] = PASSWORD


def _login_locked(seeds: Seeds, body: dict, client: str) -> None:
    ident = seeds.user()
    _identify(body, ident)
    if body["password"] == PASSWORD:
        body["password"] += "!"
    for _ in range(helpers.settings().login_failures_before_lock):
        seeds.target.post("login", {"email": ident["email"], "password": PASSWORD + "?"}, client)


def _login_refresh(seeds: Seeds, body: dict, client: str) -> None:
    """A refresh grant with a live token: the rotation answers 200."""
    body.clear()
    body.update({"grant_type": "refresh_token", "refresh_token": seeds.refresh_token()})


def _as_generated(seeds: Seeds, body: dict, client: str) -> None:
    return None


def _send_again(seeds: Seeds, body: dict, client: str) -> None:
    """The same phone sent a moment ago from the same client: inside the resend cooldown."""
    seeds.target.post("send_otp", {"phone": body["phone"]}, client)


def _send_foreign(seeds: Seeds, body: dict, client: str) -> None:
    body["phone"] = FOREIGN[len(body.get("locale") or "") % len(FOREIGN)]


def _send_busy_client(seeds: Seeds, body: dict, client: str) -> None:
    """A client past its free sends with none verified: the guard asks for a challenge (GUARD_CHALLENGES)."""
    for _ in range(helpers.settings().guard_client_free_per_hour + 1):
        if seeds.target.post("send_otp", {"phone": next(seeds.phones)}, client).status == 403:
            break
    body["phone"] = next(seeds.phones)


# Positive-mode scenarios for the operations whose success needs state; others run as generated.
SCENARIOS: dict[str, dict[str, Scenario]] = {
    "POST /send_otp": {"as_generated": _as_generated, "resend": _send_again, "foreign": _send_foreign,
                       "busy_client": _send_busy_client},
    "POST /verify_otp": {"unknown_code": _verify_phone, "sent_code": _verify_sent, "wrong_code": _verify_wrong,
                         "spent_budget": _verify_spent, "mfa_token": _verify_mfa},
    "POST /login": {"as_generated": _as_generated, "user": _login_user, "mfa_user": _login_mfa,
                    "foreign_phone": _login_foreign, "locked": _login_locked, "refresh": _login_refresh},
}


@dataclass
class Run:
    """What one operation and mode reached."""

    examples: int = 0
    statuses: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    scenarios: Counter = field(default_factory=Counter)
    not_run: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"examples": self.examples, "statuses": dict(sorted(self.statuses.items())),
                               "codes": dict(sorted(self.codes.items()))}
        if self.scenarios:
            out["scenarios"] = dict(sorted(self.scenarios.items()))
        if self.not_run:
            out["not_run"] = self.not_run
        return out


def _error_code(response) -> str | None:
    try:
        body = response.json() if callable(getattr(response, "json", None)) else response.get_json(silent=True)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def fuzz(target, path: str, method: str, mode: GenerationMode, examples: int) -> Run:
    operation = load_schema()[path][method]
    key = f"{method} {path}"
    run = Run()
    checks = NEGATIVE_CHECKS if mode == GenerationMode.NEGATIVE else POSITIVE_CHECKS
    scenarios = SCENARIOS.get(key, {"as_generated": _as_generated}) if mode == GenerationMode.POSITIVE else {
        "as_generated": _as_generated}
    seeds = Seeds(target) if len(scenarios) > 1 else None
    each = max(2, examples // len(scenarios))

    def runner(name: str, scenario: Scenario):
        # Headers every operation reads: the client address (limits) and the Origin (CORS).
        @given(case=operation.as_strategy(generation_mode=mode), client=st.sampled_from(CLIENTS),
               origin=st.sampled_from([None, ORIGIN, "https://evil.example"]))
        @settings(max_examples=each, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), print_blob=True)
        def one(case, client, origin):
            if isinstance(case.body, dict) and seeds is not None:
                scenario(seeds, case.body, client)
            case.headers = {**(case.headers or {}), "X-Forwarded-For": client}
            if origin:
                case.headers["Origin"] = origin
            response = target.send(case)
            run.examples += 1
            run.scenarios[name] += 1
            run.statuses[str(response.status_code)] += 1
            code = _error_code(response)
            if code:
                run.codes[f"{response.status_code} {code}"] += 1
            case.validate_response(response, checks=checks)

        return one

    for name, scenario in scenarios.items():
        try:
            runner(name, scenario)()
        except Unsatisfiable:
            reason = UNSATISFIABLE.get(mode.value) if not _has_input(key) else None
            run.not_run = reason or f"schemathesis generated no {mode.value} case"
    return run


def coverage(stats: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per operation: each documented status, and what reached it (the fuzzer, a dedicated test, or nothing)."""
    out: dict[str, dict[str, Any]] = {}
    for op, documented in documented_statuses().items():
        reached: Counter = Counter()
        for mode in ("positive", "negative"):
            reached.update(stats.get(f"{op} {mode}", {}).get("statuses", {}))
        by = {}
        for status in documented:
            if reached[status]:
                by[status] = f"fuzzer ({reached[status]})"
            elif status in DEDICATED.get(op, {}):
                by[status] = DEDICATED[op][status]
            elif status in BY_DESIGN:
                by[status] = f"not reached by design: {BY_DESIGN[status]}"
            else:
                by[status] = None
        out[op] = by
    return out


def proof_failures(stats: dict[str, dict[str, Any]]) -> list[str]:
    """Everything that makes this fuzz run not a proof: a mode not run without a reason, a status nobody reached,
    a dedicated test that does not exist, a status reached that the spec does not list."""
    failures = []
    documented = documented_statuses()
    for key, run in stats.items():
        op, mode = key.rsplit(" ", 1)
        if run.get("not_run") and not (run["not_run"] == UNSATISFIABLE.get(mode) and not _has_input(op)):
            failures.append(f"{key}: not run ({run['not_run']})")
        for status in run.get("statuses", {}):
            if status not in documented[op]:
                failures.append(f"{key}: answered {status}, which the spec does not list")
    for op, by in coverage(stats).items():
        if f"{op} positive" not in stats:
            failures.append(f"{op}: never fuzzed")
        failures += [f"{op}: documented status {status} reached by nothing" for status, how in by.items() if how is None]
    for node in {n for tests in DEDICATED.values() for n in tests.values()}:
        if not _test_exists(node):
            failures.append(f"dedicated test {node} does not exist")
    return failures


@functools.cache
def _has_input(op: str) -> bool:
    method, path = op.split(" ", 1)
    operation = load_schema()[path][method]
    return bool(operation.body) or any(True for _ in operation.iter_parameters())


def _test_exists(node: str) -> bool:
    file, name = node.split("::", 1)
    tree = ast.parse((REPO / file).read_text())
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def record(figures, size, target_name: str) -> None:
    total: Counter = Counter()
    for run in STATS.values():
        total.update(run["statuses"])
    examples = Counter()
    for key, run in STATS.items():
        examples[key.rsplit(" ", 1)[0]] += run["examples"]
    figures(f"fuzz_openapi_{target_name}", {
        "target": target_name,
        "operations": len(examples),
        "examples_per_operation_and_mode": size.fuzz_examples,
        "examples_min_per_operation": min(examples.values()),
        "requests": sum(total.values()),
        "statuses": dict(sorted(total.items())),
        "server_errors_5xx": sum(v for k, v in total.items() if k.startswith("5") and k != "503"),
        "not_run": {k: v["not_run"] for k, v in sorted(STATS.items()) if v.get("not_run")},
        "by_operation": dict(sorted(STATS.items())),
        "coverage": coverage(STATS),
        "accepted_statuses": accepted_statuses(),
    })


MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@pytest.fixture(scope="module")
def stats_sink():
    STATS.clear()
    yield STATS


@pytest.fixture
def in_process(stack, monkeypatch):
    for name, value in FUZZ_ENV.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    users.write_canary(runtime.pii_keyring())
    return InProcess()


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("path,method", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_fuzz_in_process(in_process, stats_sink, size, path, method, mode):
    STATS[f"{method} {path} {mode.value}"] = fuzz(in_process, path, method, mode, size.fuzz_examples).as_dict()


def test_fuzz_in_process_figures(stats_sink, size, figures):
    failures = proof_failures(STATS)
    assert not failures, "\n".join(failures)
    record(figures, size, "in_process")


@pytest.fixture(scope="module")
def function_processes(firestore_emulator, secret_manager, tmp_path_factory):
    from tests.support.functions import FunctionProcess
    from tests.support.stack import local_env

    env = local_env(firestore_emulator, secret_manager) | FUZZ_ENV
    logs = tmp_path_factory.mktemp("fuzz-logs")
    procs = {name: FunctionProcess(name, env, log_path=logs / f"{name}.log").start() for name in FUNCTIONS}
    yield {name: p.url for name, p in procs.items()}
    for p in procs.values():
        p.stop()


@pytest.mark.prove
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("path,method", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_fuzz_processes(stack, function_processes, stats_sink, size, path, method, mode):
    users.write_canary(runtime.pii_keyring())
    target = Processes(function_processes)
    STATS[f"{method} {path} {mode.value}"] = fuzz(target, path, method, mode, size.fuzz_examples).as_dict()


@pytest.mark.prove
def test_fuzz_processes_figures(stats_sink, size, figures):
    failures = proof_failures(STATS)
    assert not failures, "\n".join(failures)
    record(figures, size, "processes")


def test_a_fuzz_run_that_misses_a_status_or_skips_a_mode_is_no_proof():
    """The gate itself: everything reached passes; a status nobody reached, a documented-nowhere status,
    a mode with input that generated nothing, or a dedicated test that does not exist, fails."""
    documented = documented_statuses()
    complete = {}
    for op, statuses in documented.items():
        fuzzed = [s for s in statuses if s not in DEDICATED.get(op, {}) and s not in BY_DESIGN]
        complete[f"{op} positive"] = {"examples": 5, "statuses": dict.fromkeys(fuzzed, 1)}
        complete[f"{op} negative"] = ({"examples": 5, "statuses": {"400": 5}} if op.startswith("POST") else
                                      {"examples": 0, "statuses": {}, "not_run": UNSATISFIABLE["negative"]})
    assert proof_failures(complete) == []

    missing = {**complete, "POST /send_otp positive": {"examples": 5, "statuses": {"202": 5}}}
    assert "POST /send_otp: documented status 429 reached by nothing" in proof_failures(missing)
    undocumented = {**complete, "GET /login positive": {"examples": 5, "statuses": {"200": 4, "404": 1}}}
    assert "GET /login positive: answered 404, which the spec does not list" in proof_failures(undocumented)
    skipped = {**complete, "POST /login negative": {"examples": 0, "statuses": {}, "not_run": "no case"}}
    assert "POST /login negative: not run (no case)" in proof_failures(skipped)
    absent = dict(complete)
    del absent["GET /login positive"], absent["GET /login negative"]
    assert "GET /login: never fuzzed" in proof_failures(absent)
