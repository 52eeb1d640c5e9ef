"""Leaks: run every flow, capture every log line, and look for what must never be there.

The flows go through the Twilio path (the real SDK -> a recording proxy ->
Prism, and a faulty Twilio for the 502s, including Twilio's 21211 error whose
text quotes the recipient), so codes pass only through the provider request,
never through a development sink. Then the logs are searched for every value
the run handled: each code (as a whole number), each full phone number (E.164,
national digits, `whatsapp:` form), the password, every access, mfa and refresh
token (and each refresh token's secret part),
and every Secret Manager value (pepper, signing key PEM and its base64 body,
each keyring key, Twilio SID and auth token, admin password). Error bodies are
searched for the same values and for internals (stack traces, module paths,
client library names).

`make test` runs it in-process (logs captured with the library's own JSON
formatter); `make prove` runs it against real processes and reads their
stdout/stderr files.
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass, field

import pytest
import requests

from otplogin import log as otplog
from otplogin import passwords, runtime, users
from tests.prove.conftest import code_in
from tests.prove.test_nasty_inputs import INTERNALS
from tests.support.apps import app_client
from tests.support.prism import FaultyTwilio, RecordingProxy

PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "Tr0ub4dor&3-wrong"
ADDRESS = "12 avenue du Commerce, Kinshasa"
PHONES = {"sms": "+243812340001", "whatsapp": "+243812340002", "profile": "+243812340003",
          "mfa": "+243812340004", "refused": "+243812340005", "moroccan": "+212650123499",
          "unconfirmed": "+243812340006", "garbled": "+243812340007"}
ALL_SECRET_IDS = ("otp-pepper", "jwt-signing-keys", "pii-keyring", "twilio-account-sid", "twilio-auth-token",
                  "twilio-sender", "admin-password")


@dataclass
class Harvest:
    codes: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    error_bodies: list[str] = field(default_factory=list)
    public_bodies: list[str] = field(default_factory=list)  # health, JWKS: searched for secrets only
    answers: list[tuple[str, int]] = field(default_factory=list)


def secret_values(secret_manager) -> dict[str, str]:
    """Every Secret Manager value, and the parts of each that would leak it too."""
    out: dict[str, str] = {}
    for sid in ALL_SECRET_IDS:
        value = secret_manager.client.access_secret_version(
            name=secret_manager.secret_name(sid) + "/versions/latest").payload.data.decode()
        out[sid] = value
        if sid == "jwt-signing-keys":
            for i, key in enumerate(json.loads(value)["keys"]):
                pem = key["private_key_pem"]
                out[f"{sid}[{i}].pem"] = pem
                body = "".join(line for line in pem.splitlines() if "-----" not in line)
                out[f"{sid}[{i}].pem_body"] = body
        if sid == "pii-keyring":
            for i, key in enumerate(json.loads(value)["keys"]):
                out[f"{sid}[{i}]"] = key
    return out


def forbidden(harvest: Harvest, secrets: dict[str, str]) -> dict[str, re.Pattern]:
    """name -> pattern of every value that must not appear."""
    patterns: dict[str, re.Pattern] = {}
    for code in harvest.codes:
        patterns[f"code {code}"] = re.compile(rf"(?<!\d){code}(?!\d)")
    for name, phone in PHONES.items():
        patterns[f"phone {name} (E.164)"] = re.compile(re.escape(phone))
        patterns[f"phone {name} (national digits)"] = re.compile(rf"(?<!\d){phone[4:]}(?!\d)")
    patterns["password"] = re.compile(re.escape(PASSWORD))
    patterns["wrong password"] = re.compile(re.escape(WRONG_PASSWORD))
    patterns["address"] = re.compile(re.escape(ADDRESS))
    for i, token in enumerate(sorted(harvest.tokens)):
        patterns[f"token {i}"] = re.compile(re.escape(token))
        patterns[f"token {i} signature"] = re.compile(re.escape(token.rsplit(".", 1)[1]))  # a refresh token's secret
    for name, value in secrets.items():
        if name == "twilio-sender":
            continue  # a public sender number, not a credential (checked below as a phone anyway)
        patterns[f"secret {name}"] = re.compile(re.escape(value.strip()))
    return patterns


def scan(texts: dict[str, str], patterns: dict[str, re.Pattern]) -> list[str]:
    found = []
    for source, text in texts.items():
        for name, pattern in patterns.items():
            if pattern.search(text):
                found.append(f"{name} in {source}")
    return found


def flows(post, get, twilio: RecordingProxy, faulty: FaultyTwilio, faulty_post, harvest: Harvest) -> None:
    """Everything a client can do, successes and failures."""

    def call(function, body, expect):
        status, text = post(function, body)
        harvest.answers.append((function, status))
        data = json.loads(text) if text else {}
        if status >= 400:
            harvest.error_bodies.append(text)
        for key in ("access_token", "mfa_token", "refresh_token"):
            if key in data:
                harvest.tokens.add(data[key])
        assert status == expect, (function, body, status, text)
        return data

    def last_code() -> str:
        code = code_in(twilio.last.form["Body"][0])
        harvest.codes.add(code)
        return code

    # Phone codes, both channels, a wrong guess first.
    call("send_otp", {"phone": PHONES["sms"], "locale": "fr"}, 202)
    code = last_code()
    call("verify_otp", {"phone": PHONES["sms"], "code": f"{(int(code) + 1) % 10**6:06d}"}, 401)
    call("verify_otp", {"phone": PHONES["sms"], "code": code}, 200)
    call("verify_otp", {"phone": PHONES["sms"], "code": code}, 401)
    call("send_otp", {"phone": PHONES["whatsapp"], "channel": "whatsapp"}, 202)
    call("verify_otp", {"phone": PHONES["whatsapp"], "code": last_code()}, 200)
    call("send_otp", {"phone": PHONES["moroccan"], "locale": "en"}, 202)
    call("verify_otp", {"phone": PHONES["moroccan"], "code": last_code()}, 200)
    call("send_otp", {"phone": PHONES["sms"]}, 429)  # cooldown
    # Passwords: success with PII, wrong password, unknown user, a second factor.
    signed_in = call("login", {"email": "leak@example.cd", "password": PASSWORD}, 200)
    # Sessions: rotate twice, replay the first token (reuse: the family is revoked), sign out.
    spent = signed_in["refresh_token"]
    newer = call("login", {"grant_type": "refresh_token", "refresh_token": spent}, 200)["refresh_token"]
    newest = call("login", {"grant_type": "refresh_token", "refresh_token": newer}, 200)["refresh_token"]
    call("login", {"grant_type": "refresh_token", "refresh_token": spent}, 401)
    call("login", {"grant_type": "refresh_token", "refresh_token": newest}, 401)
    call("login/logout", {"refresh_token": newest}, 204)
    call("login", {"code": "LEAK0001", "password": WRONG_PASSWORD}, 401)
    call("login", {"email": "nobody@example.cd", "password": PASSWORD}, 401)
    mfa = call("login", {"email": "mfa@example.cd", "password": PASSWORD}, 200)
    call("verify_otp", {"mfa_token": mfa["mfa_token"], "code": last_code()}, 200)
    # A tampered token, bad input.
    call("verify_otp", {"mfa_token": mfa["mfa_token"][:-4] + "AAAA", "code": "123456"}, 400)
    call("send_otp", {"phone": PHONES["refused"] + "\u0000"}, 400)
    call("send_otp", {"phone": "+33612345678"}, 403)
    # Twilio refusing: 21211 quotes the number, then a 500, then garbage. The last two may have
    # delivered (the send keeps its cooldown), so each goes to a number of its own.
    for mode, to in (("invalid_to", "refused"), ("500", "unconfirmed"), ("garbage", "garbled")):
        faulty.mode = mode
        status, text = faulty_post({"phone": PHONES[to]})
        harvest.answers.append(("send_otp(faulty twilio)", status))
        harvest.error_bodies.append(text)
        assert status == 502, text
    # Health and the JWKS.
    for function, path in (("send_otp", "/healthz"), ("verify_otp", "/healthz"), ("login", "/healthz"),
                           ("login", "/.well-known/jwks.json")):
        status, text = get(function, path)
        assert status == 200, text
        harvest.public_bodies.append(text)


def make_users() -> None:
    users.write_canary(runtime.pii_keyring())
    for code, email, mfa, phone in (("LEAK0001", "leak@example.cd", False, PHONES["profile"]),
                                    ("LEAK0002", "mfa@example.cd", True, PHONES["mfa"])):
        users.create(code=code, email=email, password_hash=passwords.hash_password(PASSWORD), role="user",
                     keyring=runtime.pii_keyring(), pii={"phone": phone, "address": ADDRESS, "whatsapp": phone},
                     mfa_enabled=mfa)


def judge(harvest: Harvest, logs: dict[str, str], secrets: dict[str, str], figures, section: str) -> None:
    patterns = forbidden(harvest, secrets)
    found_in_logs = scan(logs, patterns)
    bodies = {f"error body {i}": b for i, b in enumerate(harvest.error_bodies)}
    bodies |= {f"health/JWKS body {i}": b for i, b in enumerate(harvest.public_bodies)}
    found_in_bodies = scan(bodies, patterns)
    internals = [f"{m!r} in error body" for b in harvest.error_bodies for m in INTERNALS if m in b]
    lines = sum(t.count("\n") for t in logs.values())
    assert lines > 10, "the logs captured nothing: the scan would prove nothing"
    assert harvest.codes and harvest.tokens
    assert any('"event": "refresh_token_reused"' in t for t in logs.values()), "the reuse alert's event is logged"
    assert found_in_logs == [], found_in_logs
    assert found_in_bodies == [], found_in_bodies
    assert internals == [], internals
    figures(section, {
        "requests": len(harvest.answers),
        "log_sources": len(logs),
        "log_lines_scanned": lines,
        "values_searched": len(patterns),
        "codes_searched": len(harvest.codes),
        "tokens_searched": len(harvest.tokens),
        "secret_values_searched": sum(1 for n in patterns if n.startswith("secret ")),
        "error_bodies_checked": len(harvest.error_bodies),
        "found_in_logs": found_in_logs,
        "found_in_error_bodies": found_in_bodies,
        "internals_in_error_bodies": internals,
    })


@pytest.fixture
def captured_logs():
    """Every record logged in this process, formatted by the library's own JSON formatter."""
    otplog.configure()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(otplog.CloudLoggingFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ("twilio", "urllib3", "google", "grpc")}
    yield stream
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_no_secret_in_logs_or_error_bodies_in_process(stack, prism, secret_manager, captured_logs, monkeypatch,
                                                      figures):
    harvest = Harvest()
    with RecordingProxy(prism.base_url) as twilio, FaultyTwilio("invalid_to") as faulty:
        monkeypatch.setenv("SMS_PROVIDER", "twilio")
        monkeypatch.setenv("TWILIO_API_BASE", twilio.base_url)
        runtime.reset()
        make_users()
        clients = {name: app_client(name) for name in ("send_otp", "verify_otp", "login")}

        def post(function, body):
            function, _, path = function.partition("/")
            r = clients[function].post("/" + path, data=json.dumps(body), content_type="application/json")
            return r.status_code, r.get_data(as_text=True)

        def get(function, path):
            r = clients[function].get(path)
            return r.status_code, r.get_data(as_text=True)

        def faulty_post(body):
            # The same library, pointed at the faulty Twilio for these requests.
            monkeypatch.setenv("TWILIO_API_BASE", faulty.base_url)
            runtime.reset()
            try:
                return post("send_otp", body)
            finally:
                monkeypatch.setenv("TWILIO_API_BASE", twilio.base_url)
                runtime.reset()

        flows(post, get, twilio, faulty, faulty_post, harvest)
    judge(harvest, {"in-process logs": captured_logs.getvalue()}, secret_values(secret_manager), figures,
          "leaks_in_process")


@pytest.mark.prove
def test_no_secret_in_process_logs_or_error_bodies(stack, prism, secret_manager, tmp_path, figures):
    from tests.support.functions import FunctionProcess

    harvest = Harvest()
    procs: dict[str, FunctionProcess] = {}
    try:
        with RecordingProxy(prism.base_url) as twilio, FaultyTwilio("invalid_to") as faulty:
            make_users()
            env = stack | {"SMS_PROVIDER": "twilio", "TWILIO_API_BASE": twilio.base_url}
            for name in ("send_otp", "verify_otp", "login"):
                procs[name] = FunctionProcess(name, env, log_path=tmp_path / f"{name}.log").start()
            procs["faulty"] = FunctionProcess("send_otp", env | {"TWILIO_API_BASE": faulty.base_url},
                                              log_path=tmp_path / "send_otp-faulty.log").start()
            session = requests.Session()

            def post(function, body):
                function, _, path = function.partition("/")
                r = session.post(procs[function].url + "/" + path, json=body, timeout=30)
                return r.status_code, r.text

            def get(function, path):
                r = session.get(procs[function].url + path, timeout=30)
                return r.status_code, r.text

            def faulty_post(body):
                r = session.post(procs["faulty"].url, json=body, timeout=30)
                return r.status_code, r.text

            flows(post, get, twilio, faulty, faulty_post, harvest)
    finally:
        for proc in procs.values():
            proc.stop()
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    judge(harvest, logs, secret_values(secret_manager), figures, "leaks_processes")
