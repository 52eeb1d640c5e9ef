"""The client address the abuse limits count: the rightmost X-Forwarded-For entry.

Google's front end appends the address it saw to the right; everything to its
left was written by the caller and is not to be trusted."""

from __future__ import annotations

import flask
import pytest

from otplogin.http import client_ip

APP = flask.Flask(__name__)


def ip_for(forwarded: str | None, remote: str = "10.9.8.7") -> str:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    with APP.test_request_context("/", headers=headers, environ_base={"REMOTE_ADDR": remote}):
        return client_ip(flask.request)


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("1.2.3.4, 198.51.100.7", "198.51.100.7"),  # caller wrote 1.2.3.4
        ("1.2.3.4,5.6.7.8 ,  198.51.100.7", "198.51.100.7"),
        ("spoofed, 2001:db8::1", "2001:db8::1"),
        ("198.51.100.7, ", "10.9.8.7"),  # empty rightmost entry: nothing trustworthy in the header
    ],
)
def test_the_rightmost_entry_is_the_client(forwarded: str, expected: str) -> None:
    assert ip_for(forwarded) == expected


def test_without_the_header_the_peer_address_counts() -> None:
    assert ip_for(None) == "10.9.8.7"


def test_caller_written_entries_do_not_change_the_client() -> None:
    assert {ip_for(f"{i}.{i}.{i}.{i}, 198.51.100.7") for i in range(1, 50)} == {"198.51.100.7"}


def hops_ip(forwarded: str, hops: int) -> str:
    with APP.test_request_context("/", headers={"X-Forwarded-For": forwarded}, environ_base={"REMOTE_ADDR": "10.9.8.7"}):
        return client_ip(flask.request, trusted_hops=hops)


@pytest.mark.parametrize(
    ("forwarded", "hops", "expected"),
    [
        # An external Application Load Balancer appends the client, then itself.
        ("spoofed, 198.51.100.7, 35.191.0.1", 2, "198.51.100.7"),
        ("198.51.100.7, 35.191.0.1", 2, "198.51.100.7"),
        ("198.51.100.7, 35.191.0.1", 1, "35.191.0.1"),  # the wrong setting: everyone is the balancer
        ("198.51.100.7", 2, "198.51.100.7"),  # fewer entries than hops: the nearest there is
    ],
)
def test_trusted_proxy_hops_pick_the_entry_the_last_trusted_proxy_wrote(forwarded: str, hops: int, expected: str) -> None:
    assert hops_ip(forwarded, hops) == expected

