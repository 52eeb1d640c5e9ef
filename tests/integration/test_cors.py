"""CORS on every function: what a browser is allowed to do, and what it is refused.

The rules (otplogin.http, openapi.yaml "Headers"):
- an Origin in CORS_ALLOWED_ORIGINS (exact match, none by default) gets its own origin
  echoed, never `*`, on the preflight and on every actual answer (errors included),
  with `Retry-After` exposed so a page can read a 429's wait;
- any other Origin gets no Access-Control-* header at all: the browser refuses;
- every answer carries `Vary: Origin`, so a cache never serves one origin's grant to another;
- no `Access-Control-Allow-Credentials`: the API uses no cookies (tokens travel in
  bodies and the Authorization header), so a page calling with `credentials: "include"`
  is refused by the browser, and `*`-with-credentials cannot happen.
The headless-Chromium side of the same rules is in tests/browser/.
"""

from __future__ import annotations

import json

import pytest

from otplogin import runtime
from tests.support.apps import app_client

FUNCTIONS = ("send_otp", "verify_otp", "login")
APP = "https://app.example.cd"
ADMIN = "http://localhost:5173"
PHONE = "+243812345678"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


def cors_headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.lower().startswith("access-control-")}


def vary(response) -> set[str]:
    return {part.strip().lower() for part in response.headers.get("Vary", "").split(",") if part.strip()}


@pytest.fixture
def allow(stack, monkeypatch):
    """Set CORS_ALLOWED_ORIGINS (as Terraform does: comma-separated) and re-read the settings."""

    def set_origins(value: str) -> None:
        monkeypatch.setenv("CORS_ALLOWED_ORIGINS", value)
        runtime.reset()

    set_origins(f"{APP},{ADMIN}")
    return set_origins


def preflight(function: str, origin: str | None, **extra: str):
    headers = PREFLIGHT | extra | ({"Origin": origin} if origin else {})
    return app_client(function).options("/", headers=headers)


# ------------------------------------------------------------------------- preflight


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("origin", [APP, ADMIN])
def test_preflight_from_an_allowed_origin_grants_post_with_json(allow, function, origin):
    r = preflight(function, origin)
    assert r.status_code == 204 and r.get_data() == b""
    assert r.headers["Access-Control-Allow-Origin"] == origin  # the exact origin, echoed
    methods = {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST"} <= methods and not methods & {"PUT", "PATCH", "DELETE", "*"}
    allowed_headers = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert "content-type" in allowed_headers  # application/json is not a "simple" content type
    assert "*" not in allowed_headers
    assert 0 < int(r.headers["Access-Control-Max-Age"]) <= 7200  # Chromium caps at 7200 s
    assert "origin" in vary(r)
    assert "Access-Control-Allow-Credentials" not in r.headers


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://app.example.cd",  # another scheme
        "https://app.example.cd:8443",  # another port
        "https://app.example.cd.evil.example",  # the allowed origin as a prefix
        "https://evil-app.example.cd",  # ... and as a suffix
        "https://sub.app.example.cd",  # a subdomain is another origin
        "https://APP.EXAMPLE.CD",  # browsers send lower case; anything else is not what was configured
        "https://app.example.cd/",  # not an origin serialization
        "null",  # sandboxed iframes, file:// pages, some redirects
        "*",
        "",
    ],
)
def test_preflight_from_any_other_origin_grants_nothing(allow, function, origin):
    r = preflight(function, origin)
    assert r.status_code == 204
    assert cors_headers(r) == {}
    assert "origin" in vary(r)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_preflight_without_origin_grants_nothing(allow, function):
    r = preflight(function, None)
    assert r.status_code == 204 and cors_headers(r) == {}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_origin_is_allowed_by_default(stack, monkeypatch, function):
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    runtime.reset()
    for origin in (APP, "http://localhost", "http://127.0.0.1:8088"):
        assert cors_headers(preflight(function, origin)) == {}


def test_the_list_is_comma_separated_and_trimmed(allow):
    allow(f" {APP} ,, {ADMIN} ")
    assert preflight("send_otp", APP).headers["Access-Control-Allow-Origin"] == APP
    assert preflight("send_otp", ADMIN).headers["Access-Control-Allow-Origin"] == ADMIN


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_wildcard_in_the_list_allows_no_one_and_is_never_echoed(allow, function):
    allow("*")
    for origin in (APP, "https://evil.example", "null"):
        r = preflight(function, origin)
        assert cors_headers(r) == {}, origin
        post = app_client(function).post("/", json={}, headers={"Origin": origin})
        assert cors_headers(post) == {}, origin


@pytest.mark.parametrize("value", ["*", "null", "*,null", "https://app.example.cd/", "app.example.cd"])
def test_only_exact_origins_are_accepted_in_the_configuration(value):
    from otplogin.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="CORS_ALLOWED_ORIGINS"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo-otp", "CORS_ALLOWED_ORIGINS": value})


@pytest.mark.parametrize("function", FUNCTIONS)
def test_star_and_null_are_never_granted_even_when_listed(allow, function):
    allow("*,null")
    for origin in ("*", "null"):  # `null`: sandboxed iframes and file:// pages; `*`: only a forged request sends it
        assert preflight(function, origin).headers.get("Access-Control-Allow-Origin") is None, origin


# ----------------------------------------------------------------- actual answers


def answers(function: str, origin: str):
    """One answer of each kind a page meets: success or domain error, health, 4xx plumbing errors."""
    client = app_client(function)
    headers = {"Origin": origin}
    body = {"send_otp": {"phone": PHONE}, "verify_otp": {"phone": PHONE, "code": "123456"},
            "login": {"email": "nobody@example.com", "password": "wrong"}}[function]  # fmt: skip
    yield "POST", client.post("/", data=json.dumps(body), content_type="application/json", headers=headers)
    yield "GET /healthz", client.get("/healthz", headers=headers)
    yield "415", client.post("/", data="x", content_type="text/plain", headers=headers)
    yield "400", client.post("/", data="[]", content_type="application/json", headers=headers)
    yield "404", client.get("/nothing-here", headers=headers)
    yield "405", client.put("/", headers=headers)
    if function == "login":
        yield "JWKS", client.get("/.well-known/jwks.json", headers=headers)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_answer_to_an_allowed_origin_carries_its_origin(allow, function):
    for what, r in answers(function, APP):
        assert r.headers.get("Access-Control-Allow-Origin") == APP, what
        assert r.headers.get("Access-Control-Expose-Headers") == "Retry-After", what
        assert "origin" in vary(r), what
        assert "Access-Control-Allow-Credentials" not in r.headers, what


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_answer_to_another_origin_carries_cors_headers(allow, function):
    for what, r in answers(function, "https://evil.example"):
        assert cors_headers(r) == {}, what
        assert "origin" in vary(r), what


def test_the_public_jwks_varies_by_origin_for_caches(allow):
    r = app_client("login").get("/.well-known/jwks.json", headers={"Origin": APP})
    assert r.headers["Cache-Control"] == "public, max-age=300" and "origin" in vary(r)


def test_a_rate_limited_page_can_read_retry_after(allow):
    client = app_client("send_otp")
    send = {"data": json.dumps({"phone": PHONE}), "content_type": "application/json", "headers": {"Origin": APP}}
    assert client.post("/", **send).status_code == 202
    r = client.post("/", **send)  # within the resend cooldown
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "rate_limited"
    assert r.headers["Access-Control-Allow-Origin"] == APP
    exposed = {h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert "retry-after" in exposed and int(r.headers["Retry-After"]) >= 1
