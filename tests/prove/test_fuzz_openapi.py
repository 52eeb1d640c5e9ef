"""Schemathesis against openapi.yaml: every operation of every function, positive and negative data.

Checks on every answer: no 5xx, the status is one the operation lists, the
content type, the required headers (`Retry-After` on 429, `Allow` on 405,
`Cache-Control`) and the body schema; for negative data (what the spec says
is invalid) also that it is rejected with a 4xx.

`make test` drives the functions in-process (functions-framework apps behind
a WSGI dispatcher that maps `/send_otp/...` to send_otp's root, the
`cloudfunctions.net/FUNCTION` form of the URLs the spec uses); the `prove` run
drives one real functions-framework process per function over loopback HTTP.
"""

from __future__ import annotations

from collections import Counter

import pytest
import requests  # noqa: E402
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from otplogin import runtime, users  # noqa: E402
from tests.support.apps import FUNCTIONS, REPO  # noqa: E402

SPEC = REPO / "openapi.yaml"


def negative_data_rejected(ctx, response, case):
    """schemathesis' negative_data_rejection, also accepting 413: an invalid body can be invalid by being too big."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


POSITIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                   response_headers_conformance, response_schema_conformance]
NEGATIVE_CHECKS = [*POSITIVE_CHECKS, negative_data_rejected]
STATS: dict[str, Counter] = {}


def load_schema():
    return schemathesis.openapi.from_path(str(SPEC))


def operations() -> list[tuple[str, str]]:
    ops = []
    for result in load_schema().get_all_operations():
        op = result.ok()
        ops.append((op.path, op.method.upper()))
    return ops


OPERATIONS = operations()


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


class InProcess:
    """The three functions in-process behind one WSGI app, mounted at /send_otp, /verify_otp, /login."""

    def __init__(self) -> None:
        import functions_framework

        apps = {
            f"/{name}": functions_framework.create_app(target=name, source=str(REPO / "functions" / name / "main.py"))
            for name in FUNCTIONS
        }
        self.app = mount(apps)

    def send(self, case):
        return case.call(app=self.app)


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


def fuzz(target, path: str, method: str, mode: GenerationMode, examples: int) -> Counter:
    operation = load_schema()[path][method]
    stats: Counter = Counter()
    checks = NEGATIVE_CHECKS if mode == GenerationMode.NEGATIVE else POSITIVE_CHECKS

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), print_blob=True)
    def run(case):
        response = target.send(case)
        stats[str(response.status_code)] += 1
        case.validate_response(response, checks=checks)

    try:
        run()
    except Unsatisfiable:
        stats["unsatisfiable"] += 1  # nothing invalid to generate (no parameters, no body)
    return stats


def record(figures, size, target_name: str) -> None:
    total = Counter()
    for counts in STATS.values():
        total.update({k: v for k, v in counts.items() if k.isdigit()})
    figures(f"fuzz_openapi_{target_name}", {
        "target": target_name,
        "operations": len({k.rsplit(' ', 1)[0] for k in STATS}),
        "examples_per_operation_and_mode": size.fuzz_examples,
        "requests": sum(total.values()),
        "statuses": dict(sorted(total.items())),
        "server_errors_5xx": sum(v for k, v in total.items() if k.startswith("5") and k != "503"),
        "by_operation": {k: dict(v) for k, v in sorted(STATS.items())},
    })


MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@pytest.fixture(scope="module")
def stats_sink():
    STATS.clear()
    yield STATS


@pytest.fixture
def in_process(stack):
    users.write_canary(runtime.pii_keyring())
    return InProcess()


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("path,method", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_fuzz_in_process(in_process, stats_sink, size, path, method, mode):
    STATS[f"{method} {path} {mode.value}"] = fuzz(in_process, path, method, mode, size.fuzz_examples)


def test_fuzz_in_process_figures(stats_sink, size, figures):
    record(figures, size, "in_process")
    assert STATS, "no fuzzing ran"


@pytest.fixture(scope="module")
def function_processes(firestore_emulator, secret_manager, tmp_path_factory):
    from tests.support.functions import FunctionProcess
    from tests.support.stack import local_env

    env = local_env(firestore_emulator, secret_manager)
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
    STATS[f"{method} {path} {mode.value}"] = fuzz(Processes(function_processes), path, method, mode, size.fuzz_examples)


@pytest.mark.prove
def test_fuzz_processes_figures(stats_sink, size, figures):
    record(figures, size, "processes")
    assert STATS, "no fuzzing ran"
