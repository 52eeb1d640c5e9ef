"""web.devserver: the loopback server of the demo page (no browser needed)."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from otplogin import store
from web.devserver import DemoSite

FUNCTIONS = {"send_otp": "http://127.0.0.1:1", "verify_otp": "http://127.0.0.1:2/", "login": "http://127.0.0.1:3"}


@pytest.fixture
def site():
    with DemoSite(FUNCTIONS) as demo:
        yield demo


def raw_get(site: DemoSite, path: str, host: str | None = None) -> tuple[int, dict]:
    """A GET with the path and Host exactly as given (requests would normalize them)."""
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
    try:
        conn.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if response.getheader("Content-Type") == "application/json" else {}
    finally:
        conn.close()


def test_page_and_config(site):
    page = requests.get(site.url, timeout=5)
    assert page.status_code == 200 and "<form id=\"send-form\"" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "connect-src 'self' http://127.0.0.1:1 http://127.0.0.1:2 http://127.0.0.1:3;" in csp
    assert "script-src 'self';" in csp and page.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(site.url + "app.js", timeout=5).headers["Content-Type"] in ("text/javascript", "application/javascript")
    assert requests.get(site.url + "config.json", timeout=5).json() == {
        "functions": {"send_otp": "http://127.0.0.1:1", "verify_otp": "http://127.0.0.1:2", "login": "http://127.0.0.1:3"},
        "jwks": "http://127.0.0.1:3/.well-known/jwks.json",
        "devOutbox": None,  # not local mode: the page shows no outbox button
    }


@pytest.mark.parametrize("path", ["/devserver.py", "/../devserver.py", "/..%2fdevserver.py", "/__init__.py", "/site/"])
def test_serves_nothing_outside_the_site(site, path):
    assert raw_get(site, path)[0] == 404


def test_no_outbox_outside_local_mode(site):
    assert raw_get(site, "/dev/outbox?phone=%2B243812345678")[0] == 404


def test_outbox_reads_codes_newest_first_and_matches_a_masked_hint(stack, firestore_emulator):
    outbox = store.client().collection("dev_outbox")
    now = datetime.now(UTC)
    for to, code, age in (("+243812345678", "111111", 20), ("+243812345678", "222222", 10), ("+243812345600", "333333", 5)):
        outbox.add({"to": to, "channel": "sms", "body": f"Your verification code is {code}. Never share it.",
                    "sent_at": now - timedelta(seconds=age)})  # fmt: skip
    with DemoSite(FUNCTIONS, outbox_emulator=firestore_emulator.host) as site:
        assert requests.get(site.url + "config.json", timeout=5).json()["devOutbox"] == "/dev/outbox"
        answer = requests.get(site.url + "dev/outbox", params={"phone": "+243812345678"}, timeout=5)
        assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer.headers
        assert [m["code"] for m in answer.json()["messages"]] == ["222222", "111111"]
        # login's phone_hint (+243*******78): each * is one hidden digit
        hinted = requests.get(site.url + "dev/outbox", params={"phone": "+243*******78"}, timeout=5).json()
        assert [m["code"] for m in hinted["messages"]] == ["222222", "111111"]
        assert raw_get(site, "/dev/outbox?phone=+243812345600")[1]["messages"][0]["code"] == "333333"  # raw +
        assert raw_get(site, "/dev/outbox?phone=%2B243")[0] == 400
        assert raw_get(site, "/dev/outbox?phone=%2B243812345678", host=f"rebound.example:{site.port}")[0] == 403
