"""--proxy-headers: the resolver's rules as a table of named cases, then the
WSGI environ / ASGI scope over real sockets, then behind a real nginx."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import sys
from pathlib import Path

import pytest

from fastbase import cli
from fastbase.config import Config, ConfigError
from fastbase.proxy import ProxyHeaders, parse_forwarded, parse_node, parse_trusted
from servers import read_response, serve

PEER = ("127.0.0.1", 50000)
SERVER = ("127.0.0.1", 8000)
UNCHANGED = (PEER, "http", SERVER)


def H(**fields):
    """Header list as the parser gives it; ``x_forwarded_for=...``; a list
    value gives several field lines."""
    out = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            out.append((name.replace("_", "-").encode(), item.encode("latin-1")))
    return out


# (name, trusted, peer, headers, expected (client, scheme, server))
CASES = [
    # -- who is believed ---------------------------------------------------------
    ("no-forwarding-headers", "127.0.0.1", PEER, H(host="example.com"), UNCHANGED),
    (
        "untrusted-peer-spoofs-xff",
        "127.0.0.1",
        ("203.0.113.9", 4000),
        H(x_forwarded_for="6.6.6.6", x_forwarded_proto="https"),
        (("203.0.113.9", 4000), "http", SERVER),
    ),
    (
        "untrusted-peer-spoofs-forwarded",
        "127.0.0.1",
        ("203.0.113.9", 4000),
        H(forwarded="for=6.6.6.6;proto=https;host=evil.example"),
        (("203.0.113.9", 4000), "http", SERVER),
    ),
    ("untrusted-peer-spoofs-host-and-port", "10.0.0.0/8", PEER, H(x_forwarded_host="evil.example", x_forwarded_port="1"), UNCHANGED),
    ("trusted-peer-single-hop", "127.0.0.1", PEER, H(x_forwarded_for="198.51.100.7"), (("198.51.100.7", 0), "http", SERVER)),
    (
        "ipv4-mapped-peer-is-its-ipv4",
        "127.0.0.1",
        ("::ffff:127.0.0.1", 1),
        H(x_forwarded_for="198.51.100.7"),
        (("198.51.100.7", 0), "http", SERVER),
    ),
    (
        "unix-socket-peer-is-trusted",
        "127.0.0.1",
        None,
        H(x_forwarded_for="198.51.100.7", x_forwarded_proto="https"),
        (("198.51.100.7", 0), "https", SERVER),
    ),
    ("unix-socket-peer-without-headers", "127.0.0.1", None, [], (None, "http", SERVER)),
    # -- the rightmost untrusted hop ------------------------------------------------
    ("client-spoofs-leftmost", "127.0.0.1", PEER, H(x_forwarded_for="6.6.6.6, 198.51.100.7"), (("198.51.100.7", 0), "http", SERVER)),
    (
        "chain-through-trusted-cidr",
        "127.0.0.1, 10.0.0.0/8",
        PEER,
        H(x_forwarded_for="6.6.6.6, 198.51.100.7, 10.0.0.5,10.1.2.3"),
        (("198.51.100.7", 0), "http", SERVER),
    ),
    (
        "all-trusted-means-leftmost",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(x_forwarded_for="10.0.0.1, 10.0.0.2"),
        (("10.0.0.1", 0), "http", SERVER),
    ),
    ("star-trusts-everyone", "*", ("203.0.113.9", 4000), H(x_forwarded_for="6.6.6.6, 198.51.100.7"), (("6.6.6.6", 0), "http", SERVER)),
    ("star-passes-unknown-hops", "*", PEER, H(forwarded="for=6.6.6.6, for=_hidden, for=unknown"), (("6.6.6.6", 0), "http", SERVER)),
    (
        "several-xff-lines-are-one-list",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(x_forwarded_for=["6.6.6.6", "198.51.100.7", "10.0.0.5"]),
        (("198.51.100.7", 0), "http", SERVER),
    ),
    ("empty-list-items-skipped", "127.0.0.1", PEER, H(x_forwarded_for=" , 198.51.100.7 ,, "), (("198.51.100.7", 0), "http", SERVER)),
    ("xff-entry-with-port", "127.0.0.1", PEER, H(x_forwarded_for="198.51.100.7:4711"), (("198.51.100.7", 4711), "http", SERVER)),
    # -- IPv6 ------------------------------------------------------------------------
    ("ipv6-peer-and-hop", "::1", ("::1", 1), H(x_forwarded_for="2001:DB8::1"), (("2001:db8::1", 0), "http", SERVER)),
    (
        "ipv6-bracketed-with-port-in-xff",
        "127.0.0.1",
        PEER,
        H(x_forwarded_for="[2001:db8::1]:4711"),
        (("2001:db8::1", 4711), "http", SERVER),
    ),
    (
        "ipv6-trusted-cidr",
        "2001:db8::/32",
        ("2001:db8::9", 1),
        H(x_forwarded_for="198.51.100.7, 2001:db8:0:1::5"),
        (("198.51.100.7", 0), "http", SERVER),
    ),
    ("ipv6-untrusted-peer", "127.0.0.1", ("2001:db8::9", 1), H(x_forwarded_for="198.51.100.7"), (("2001:db8::9", 1), "http", SERVER)),
    # -- scheme, host and port, aligned with the chosen hop -------------------------------
    ("proto-https", "127.0.0.1", PEER, H(x_forwarded_proto="HTTPS"), (PEER, "https", SERVER)),
    ("proto-not-http-ignored", "127.0.0.1", PEER, H(x_forwarded_proto="gopher"), UNCHANGED),
    (
        "proto-aligned-with-hop",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(x_forwarded_for="6.6.6.6, 198.51.100.7, 10.0.0.5", x_forwarded_proto="http, https, http"),
        (("198.51.100.7", 0), "https", SERVER),
    ),
    (
        "proto-unaligned-takes-rightmost",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(x_forwarded_for="6.6.6.6, 198.51.100.7, 10.0.0.5", x_forwarded_proto="http, https"),
        (("198.51.100.7", 0), "https", SERVER),
    ),
    (
        "one-proxy-sets-proto-many-append-xff",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(x_forwarded_for="198.51.100.7, 10.0.0.5", x_forwarded_proto="https"),
        (("198.51.100.7", 0), "https", SERVER),
    ),
    (
        "host-gives-server-with-scheme-port",
        "127.0.0.1",
        PEER,
        H(x_forwarded_host="Example.COM", x_forwarded_proto="https"),
        (PEER, "https", ("example.com", 443)),
    ),
    ("host-with-port", "127.0.0.1", PEER, H(x_forwarded_host="example.com:8443"), (PEER, "http", ("example.com", 8443))),
    (
        "host-and-forwarded-port",
        "127.0.0.1",
        PEER,
        H(x_forwarded_host="example.com", x_forwarded_port="8080"),
        (PEER, "http", ("example.com", 8080)),
    ),
    ("port-alone", "127.0.0.1", PEER, H(x_forwarded_port="8443"), (PEER, "http", ("127.0.0.1", 8443))),
    ("host-ipv6-literal", "127.0.0.1", PEER, H(x_forwarded_host="[2001:db8::1]:8080"), (PEER, "http", ("2001:db8::1", 8080))),
    (
        "host-aligned-with-hop",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(x_forwarded_for="198.51.100.7, 10.0.0.5", x_forwarded_host="public.example, internal.example"),
        (("198.51.100.7", 0), "http", ("public.example", 80)),
    ),
    ("bad-host-ignored", "127.0.0.1", PEER, H(x_forwarded_host="exa mple.com"), UNCHANGED),
    ("bad-port-ignored", "127.0.0.1", PEER, H(x_forwarded_port="99999"), UNCHANGED),
    # -- RFC 7239 Forwarded ------------------------------------------------------------------
    (
        "forwarded-simple",
        "127.0.0.1",
        PEER,
        H(forwarded="for=198.51.100.7;proto=https;host=example.com"),
        (("198.51.100.7", 0), "https", ("example.com", 443)),
    ),
    (
        "forwarded-names-case-insensitive",
        "127.0.0.1",
        PEER,
        H(forwarded="For=198.51.100.7;PROTO=https"),
        (("198.51.100.7", 0), "https", SERVER),
    ),
    ("forwarded-quoted-ipv4-port", "127.0.0.1", PEER, H(forwarded='for="198.51.100.7:4711"'), (("198.51.100.7", 4711), "http", SERVER)),
    (
        "forwarded-quoted-ipv6-port",
        "127.0.0.1",
        PEER,
        H(forwarded='for="[2001:db8:cafe::17]:4711"'),
        (("2001:db8:cafe::17", 4711), "http", SERVER),
    ),
    ("forwarded-quoted-ipv6", "127.0.0.1", PEER, H(forwarded='for="[2001:db8:cafe::17]"'), (("2001:db8:cafe::17", 0), "http", SERVER)),
    (
        "forwarded-quoted-host-with-port",
        "127.0.0.1",
        PEER,
        H(forwarded='for=198.51.100.7;host="example.com:8443"'),
        (("198.51.100.7", 0), "http", ("example.com", 8443)),
    ),
    ("forwarded-quoted-pair-escapes", "127.0.0.1", PEER, H(forwarded=r'for="\_hid\den"'), (("_hidden", 0), "http", SERVER)),
    ("forwarded-obfuscated-node", "127.0.0.1", PEER, H(forwarded="for=_hidden"), (("_hidden", 0), "http", SERVER)),
    ("forwarded-obfuscated-port", "127.0.0.1", PEER, H(forwarded='for="_gazonk:_port"'), (("_gazonk", 0), "http", SERVER)),
    ("forwarded-unknown-node", "127.0.0.1", PEER, H(forwarded="for=unknown;proto=https"), (("unknown", 0), "https", SERVER)),
    (
        "forwarded-chain",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(forwarded="for=6.6.6.6;proto=http, for=198.51.100.7;proto=https;host=a.example, for=10.0.0.5;proto=http;host=b.example"),
        (("198.51.100.7", 0), "https", ("a.example", 443)),
    ),
    (
        "forwarded-several-lines",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(forwarded=["for=6.6.6.6", "for=198.51.100.7;proto=https", "for=10.0.0.5"]),
        (("198.51.100.7", 0), "https", SERVER),
    ),
    (
        "forwarded-proto-from-the-right-never-the-left",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(forwarded="for=6.6.6.6;proto=http, for=198.51.100.7, for=10.0.0.5;proto=https"),
        (("198.51.100.7", 0), "https", SERVER),
    ),
    (
        "forwarded-element-without-for",
        "127.0.0.1",
        PEER,
        H(forwarded="proto=https;host=example.com"),
        (PEER, "https", ("example.com", 443)),
    ),
    ("forwarded-by-ignored", "127.0.0.1", PEER, H(forwarded="by=203.0.113.43;for=198.51.100.7"), (("198.51.100.7", 0), "http", SERVER)),
    ("forwarded-empty-elements", "127.0.0.1", PEER, H(forwarded=" , ;, for=198.51.100.7 ;"), (("198.51.100.7", 0), "http", SERVER)),
    (
        "forwarded-wins-over-x-forwarded",
        "127.0.0.1",
        PEER,
        H(forwarded="for=198.51.100.7", x_forwarded_for="6.6.6.6", x_forwarded_proto="https"),
        (("198.51.100.7", 0), "http", SERVER),
    ),
    # -- malformed values are ignored, never half-believed -------------------------------------
    ("forwarded-unterminated-quote", "127.0.0.1", PEER, H(forwarded='for="198.51.100.7;proto=https', x_forwarded_for="6.6.6.6"), UNCHANGED),
    ("forwarded-duplicate-parameter", "127.0.0.1", PEER, H(forwarded="for=6.6.6.6;for=198.51.100.7"), UNCHANGED),
    ("forwarded-unquoted-ipv6", "127.0.0.1", PEER, H(forwarded="for=[2001:db8::1]"), UNCHANGED),
    ("forwarded-garbage", "127.0.0.1", PEER, H(forwarded="<script>alert(1)</script>"), UNCHANGED),
    ("forwarded-bad-node-keeps-peer", "127.0.0.1", PEER, H(forwarded="for=999.1.1.1;proto=https"), (PEER, "https", SERVER)),
    (
        "xff-garbage-ends-the-walk",
        "127.0.0.1,10.0.0.0/8",
        PEER,
        H(x_forwarded_for="6.6.6.6, not-an-ip, 10.0.0.5"),
        (("10.0.0.5", 0), "http", SERVER),
    ),
    ("xff-only-garbage", "127.0.0.1", PEER, H(x_forwarded_for="<script>"), UNCHANGED),
    ("xff-bad-port", "127.0.0.1", PEER, H(x_forwarded_for="198.51.100.7:99999"), UNCHANGED),
    ("xff-hostname-is-not-an-address", "127.0.0.1", PEER, H(x_forwarded_for="evil.example"), UNCHANGED),
    ("xff-empty", "127.0.0.1", PEER, H(x_forwarded_for=""), UNCHANGED),
    ("xff-unknown", "127.0.0.1", PEER, H(x_forwarded_for="unknown"), (("unknown", 0), "http", SERVER)),
    ("non-latin1-safe", "127.0.0.1", PEER, [(b"x-forwarded-for", b"\xff\xfe, 198.51.100.7")], (("198.51.100.7", 0), "http", SERVER)),
]


@pytest.mark.parametrize("trusted, peer, headers, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_resolve(trusted, peer, headers, expected):
    assert ProxyHeaders(trusted).resolve(peer, headers, "http", SERVER) == expected


def test_case_names_are_unique():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


def test_trust_decisions_are_cached_per_address():
    proxy = ProxyHeaders("10.0.0.0/8")
    for _ in range(5):
        proxy.resolve(("10.0.0.1", 1), H(x_forwarded_for="198.51.100.7"), "http", SERVER)
    info = proxy.is_trusted.cache_info()
    assert info.misses == 2  # the peer and the hop, each decided once
    assert info.hits == 8


@pytest.mark.parametrize(
    "spec, trust_all, addresses, networks",
    [
        ("127.0.0.1", False, 1, 0),
        (" 127.0.0.1 , ::1 ,", False, 2, 0),
        ("10.0.0.0/8,fd00::/8", False, 0, 2),
        ("10.0.0.1/8", False, 0, 1),  # host bits are forgiven
        ("*", True, 0, 0),
        (["127.0.0.1", "10.0.0.0/8"], False, 1, 1),  # gunicorn's parsed list form
    ],
)
def test_parse_trusted(spec, trust_all, addresses, networks):
    parsed = parse_trusted(spec)
    assert (parsed[0], len(parsed[1]), len(parsed[2])) == (trust_all, addresses, networks)


@pytest.mark.parametrize("bad", ["localhost", "10.0.0.0/33", "1.2.3", "*.example", "::1/129", "10.0.0.0/8/8"])
def test_bad_trusted_entries_are_one_line_config_errors(bad):
    with pytest.raises(ConfigError) as info:
        Config(app="x:y", app_dir=None, proxy_headers=True, forwarded_allow_ips=f"127.0.0.1,{bad}")
    message = str(info.value)
    assert message.startswith("--forwarded-allow-ips: ") and repr(bad) in message and "\n" not in message


def test_forwarded_allow_ips_defaults(monkeypatch):
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert Config(app="x:y", app_dir=None).forwarded_allow_ips == "127.0.0.1"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    assert Config(app="x:y", app_dir=None).forwarded_allow_ips == "10.0.0.0/8"
    assert Config(app="x:y", app_dir=None, forwarded_allow_ips="*").forwarded_allow_ips == "*"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "nonsense")
    Config(app="x:y", app_dir=None)  # unused without --proxy-headers
    with pytest.raises(ConfigError):
        Config(app="x:y", app_dir=None, proxy_headers=True)


def test_cli_flags():
    args = cli.build_parser().parse_args(["--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8,*", "app:app"])
    assert args.proxy_headers is True and args.forwarded_allow_ips == "10.0.0.0/8,*"
    args = cli.build_parser().parse_args(["app:app"])
    assert args.proxy_headers is False and args.forwarded_allow_ips is None


# Both families on one request: --forwarded-headers picks the one believed.
BOTH = H(
    forwarded="for=203.0.113.9;proto=http;host=client.example",
    x_forwarded_for="198.51.100.7",
    x_forwarded_proto="https",
    x_forwarded_host="shop.example",
)
FAMILY_CASES = [
    ("auto", BOTH, (("203.0.113.9", 0), "http", ("client.example", 80))),
    ("forwarded", BOTH, (("203.0.113.9", 0), "http", ("client.example", 80))),
    ("x-forwarded", BOTH, (("198.51.100.7", 0), "https", ("shop.example", 443))),
    # Only the other family present: nothing is believed.
    ("forwarded", H(x_forwarded_for="198.51.100.7", x_forwarded_proto="https"), UNCHANGED),
    ("x-forwarded", H(forwarded="for=203.0.113.9;proto=https"), UNCHANGED),
    # A malformed Forwarded is ignored under x-forwarded, not a reason to believe nothing.
    ("x-forwarded", H(forwarded='for="broken', x_forwarded_for="198.51.100.7"), (("198.51.100.7", 0), "http", SERVER)),
    ("auto", H(forwarded='for="broken', x_forwarded_for="198.51.100.7"), UNCHANGED),
]


@pytest.mark.parametrize("family, headers, expected", FAMILY_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(FAMILY_CASES)])
def test_forwarded_headers_family(family, headers, expected):
    assert ProxyHeaders("127.0.0.1", family).resolve(PEER, headers, "http", SERVER) == expected


def test_forwarded_headers_option():
    assert cli.build_parser().parse_args(["app:app"]).forwarded_headers == "auto"
    args = cli.build_parser().parse_args(["--forwarded-headers", "x-forwarded", "app:app"])
    assert Config(app="x:y", app_dir=None, proxy_headers=True, forwarded_headers=args.forwarded_headers).forwarded_headers == "x-forwarded"
    with pytest.raises(ConfigError, match="--forwarded-headers must be one of auto, forwarded, x-forwarded, not 'both'"):
        Config(app="x:y", app_dir=None, forwarded_headers="both")
    result = subprocess.run(
        [sys.executable, "-m", "fastbase", "--forwarded-headers", "both", "app:app"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("fastbase: error: argument --forwarded-headers: invalid choice: 'both'")


def test_x_forwarded_family_ignores_a_client_forwarded_header(app_options):
    """A proxy that writes only X-Forwarded-* (and does not clear Forwarded)
    behind --forwarded-headers x-forwarded: the client's Forwarded changes nothing."""
    options = dict(app_options)
    app = options.pop("app")
    with serve(app, proxy_headers=True, forwarded_headers="x-forwarded", **options) as server, connect_from(server) as sock:
        buffered = bytearray()
        seen = ask(sock, buffered, b"Forwarded: for=6.6.6.6;proto=https\r\nX-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: http\r\n")
        assert seen["client"] == ["198.51.100.7", "0"] and seen["scheme"] == "http"
        seen = ask(sock, buffered, b"Forwarded: for=6.6.6.6;proto=https\r\n")
        assert seen["client"] == [sock.getsockname()[0], str(sock.getsockname()[1])] and seen["scheme"] == "http"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("192.0.2.43", ("192.0.2.43", 0, True)),
        ("192.0.2.43:80", ("192.0.2.43", 80, True)),
        ("[2001:db8:cafe::17]:47011", ("2001:db8:cafe::17", 47011, True)),
        ("2001:db8::17", ("2001:db8::17", 0, True)),
        ("unknown", ("unknown", 0, False)),
        ("UNKNOWN:_p", ("unknown", 0, False)),
        ("_hidden", ("_hidden", 0, False)),
        ("_SEVKISEK:_p.1", ("_SEVKISEK", 0, False)),
        ("192.0.2.43:", None),
        ("[2001:db8::17", None),
        ("[2001:db8::17]x", None),
        ("[192.0.2.43]", None),
        ("192.0.2.43:http", None),
        ("_", None),
        ("example.com", None),
    ],
)
def test_parse_node(text, expected):
    assert parse_node(text) == expected


def test_parse_forwarded_rfc7239_examples():
    # RFC 7239 section 4 and 7.1 examples.
    assert parse_forwarded('for="_gazonk"') == [{"for": "_gazonk"}]
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711"') == [{"for": "[2001:db8:cafe::17]:4711"}]
    assert parse_forwarded("for=192.0.2.60;proto=http;by=203.0.113.43") == [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}]
    assert parse_forwarded("for=192.0.2.43, for=198.51.100.17") == [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}]
    assert parse_forwarded('for=a;host="x,y"') == [{"for": "a", "host": "x,y"}]  # a comma inside quotes
    assert parse_forwarded("for=a b") is None


# -- over real sockets ---------------------------------------------------------------


class Seen:
    """WSGI and ASGI apps that answer with what they were told about the
    request: client, scheme, server, and the raw forwarding header."""

    @staticmethod
    def wsgi(environ, start_response):
        body = json.dumps(
            {
                "client": [environ["REMOTE_ADDR"], environ["REMOTE_PORT"]],
                "scheme": environ["wsgi.url_scheme"],
                "server": [environ["SERVER_NAME"], environ["SERVER_PORT"]],
                "xff": environ.get("HTTP_X_FORWARDED_FOR"),
                "forwarded": environ.get("HTTP_FORWARDED"),
            }
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    @staticmethod
    async def asgi(scope, receive, send):
        headers = dict(scope["headers"])
        client = scope["client"]
        server = scope["server"]
        body = json.dumps(
            {
                "client": [client[0], str(client[1])] if client else None,
                "scheme": scope["scheme"],
                "server": [server[0], str(server[1])] if server else None,
                "xff": headers.get(b"x-forwarded-for", b"").decode() or None,
                "forwarded": headers.get(b"forwarded", b"").decode() or None,
            }
        ).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=["wsgi-threads", "wsgi-inline", "asgi"])
def app_options(request):
    if request.param == "asgi":
        return {"app": Seen.asgi, "lifespan": "off"}
    return {"app": Seen.wsgi, "threads": 8 if request.param == "wsgi-threads" else 0}


def ask(sock, buffered, extra=b""):
    sock.sendall(b"GET / HTTP/1.1\r\nHost: backend\r\n" + extra + b"\r\n")
    status, _, body = read_response(sock, buffered)
    assert status == 200, body
    return json.loads(body)


def connect_from(server, source="127.0.0.1"):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(source, 0))
    return sock


def test_forwarded_values_reach_the_app_per_request(app_options):
    options = dict(app_options)
    app = options.pop("app")
    with serve(app, proxy_headers=True, **options) as server, connect_from(server) as sock:
        here = [sock.getsockname()[0], str(sock.getsockname()[1])]
        buffered = bytearray()
        seen = ask(
            sock, buffered, b"X-Forwarded-For: 6.6.6.6, 198.51.100.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n"
        )
        assert seen["client"] == ["198.51.100.7", "0"]
        assert (seen["scheme"], seen["server"]) == ("https", ["example.com", "443"])
        assert seen["xff"] == "6.6.6.6, 198.51.100.7"  # the header itself is left as sent
        # Keep-alive: the next request on the same connection carries nothing,
        # so it sees the socket again (no value leaks from the previous one).
        seen = ask(sock, buffered)
        assert seen["client"] == here and seen["scheme"] == "http"
        assert seen["server"] == ["127.0.0.1", str(server.port)]
        seen = ask(sock, buffered, b'Forwarded: for="[2001:db8::7]:4711";proto=https;host="shop.example:8443"\r\n')
        assert seen["client"] == ["2001:db8::7", "4711"]
        assert (seen["scheme"], seen["server"]) == ("https", ["shop.example", "8443"])


def test_untrusted_peer_headers_left_untouched(app_options):
    options = dict(app_options)
    app = options.pop("app")
    with serve(app, proxy_headers=True, forwarded_allow_ips="10.0.0.0/8", **options) as server, connect_from(server) as sock:
        seen = ask(sock, bytearray(), b"X-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\n")
        assert seen["client"] == [sock.getsockname()[0], str(sock.getsockname()[1])]
        assert seen["scheme"] == "http" and seen["server"] == ["127.0.0.1", str(server.port)]
        assert (seen["xff"], seen["forwarded"]) == ("198.51.100.7", "for=6.6.6.6")


def test_peer_address_decides_trust():
    # 127.0.0.2 is loopback too, but only 127.0.0.1 is trusted.
    with serve(Seen.wsgi, proxy_headers=True, forwarded_allow_ips="127.0.0.1") as server:
        with connect_from(server, "127.0.0.2") as sock:
            assert ask(sock, bytearray(), b"X-Forwarded-For: 198.51.100.7\r\n")["client"][0] == "127.0.0.2"
        with connect_from(server, "127.0.0.1") as sock:
            assert ask(sock, bytearray(), b"X-Forwarded-For: 198.51.100.7\r\n")["client"][0] == "198.51.100.7"


def test_disabled_by_default(app_options):
    options = dict(app_options)
    app = options.pop("app")
    with serve(app, **options) as server, connect_from(server) as sock:
        seen = ask(sock, bytearray(), b"X-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\n")
        assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"
        assert server.state.proxy is None


def test_unix_socket_peer_is_trusted(tmp_path):
    path = str(tmp_path / "s.sock")
    with serve(Seen.wsgi, uds=path, proxy_headers=True, forwarded_allow_ips="10.0.0.0/8") as server:
        assert server.sockets
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            buffered = bytearray()
            seen = ask(sock, buffered, b"X-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\n")
            assert seen["client"] == ["198.51.100.7", "0"] and seen["scheme"] == "https"
            seen = ask(sock, buffered)
            assert seen["client"] == ["", ""]  # a UNIX socket has no client address


def test_access_log_shows_the_forwarded_client(caplog):
    with caplog.at_level(logging.INFO, logger="fastbase.access"):
        with serve(Seen.wsgi, proxy_headers=True, access_log=True) as server, connect_from(server) as sock:
            ask(sock, bytearray(), b"X-Forwarded-For: 198.51.100.7\r\n")
            ask(sock, bytearray(), b'Forwarded: for="[2001:db8::7]:4711"\r\n')
    lines = [r.getMessage() for r in caplog.records if r.name == "fastbase.access"]
    assert lines[0].startswith('198.51.100.7:0 - "GET / HTTP/1.1" 200 ')
    assert lines[1].startswith("[2001:db8::7]:4711 - ")


def test_access_log_of_pipelined_requests_names_each_client(app_options, caplog):
    # The response to one request is logged after the connection may have
    # started the next (pipelined) one, from another client.
    options = dict(app_options)
    app = options.pop("app")
    clients = [f"198.51.100.{i}" for i in range(1, 9)]
    with caplog.at_level(logging.INFO, logger="fastbase.access"):
        with serve(app, proxy_headers=True, access_log=True, **options) as server, connect_from(server) as sock:
            sock.sendall(
                b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\n\r\n" % (i, c.encode()) for i, c in enumerate(clients))
            )
            buffered = bytearray()
            seen = [json.loads(read_response(sock, buffered)[2])["client"][0] for _ in clients]
            assert seen == clients
    lines = sorted(r.getMessage() for r in caplog.records if r.name == "fastbase.access")
    assert [line.split(" ")[0] for line in lines] == [f"{c}:0" for c in clients]
    assert [line.split(" ")[3] for line in lines] == [f"/{i}" for i in range(len(clients))]


# -- behind a real nginx ----------------------------------------------------------------

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (CI installs Debian's package)")

DOC = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"


def nginx_statements(text, keyword):
    """The ``keyword ... { ... }`` statements in nginx config text, braces
    inside quoted strings skipped."""
    found = []
    for match in re.finditer(rf"(?m)^[ \t]*{re.escape(keyword)}\b", text):
        start = match.start()
        depth = 0
        quoted = False
        i = text.index("{", match.end())
        while True:
            char = text[i]
            if quoted:
                if char == "\\":
                    i += 1
                elif char == '"':
                    quoted = False
            elif char == '"':
                quoted = True
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[start : i + 1].strip())
                    break
            i += 1
    return found


def guide_snippets():
    """From docs/deployment.md: the X-Forwarded-* site's and the Forwarded
    site's ``location /`` blocks, and the ``map`` blocks the latter needs."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    locations = [loc for block in blocks for loc in nginx_statements(block, "location")]
    maps = [m for block in blocks for m in nginx_statements(block, "map")]
    xff = [loc for loc in locations if "X-Forwarded-For $proxy_add_x_forwarded_for" in loc]
    forwarded = [loc for loc in locations if 'proxy_set_header Forwarded "$' in loc]
    assert len(xff) == 1 and len(forwarded) == 1 and len(maps) == 2, "the guide's nginx snippets changed shape"
    return xff[0], forwarded[0], maps


def nginx_conf(tmp, backend, xff_port, fwd_port, tls_listen, ipv6_listen):
    xff_location, forwarded_location, maps = guide_snippets()
    upstreams = {re.search(r"proxy_pass http://(\w+);", loc).group(1) for loc in (xff_location, forwarded_location)}
    upstream_blocks = "\n".join(f"upstream {name} {{ server 127.0.0.1:{backend}; keepalive 4; }}" for name in upstreams)
    maps_text = "\n".join(maps)
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{upstream_blocks}
{maps_text}
    server {{
        listen 127.0.0.1:{xff_port};
        {tls_listen}
{xff_location}
    }}
    server {{
        listen 127.0.0.1:{fwd_port};
        {ipv6_listen}
{forwarded_location}
    }}
}}
"""


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def make_certificate(directory):
    """A self-signed certificate for nginx's TLS listener, or None."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = shutil.which("openssl")
    if openssl:
        result = subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ],
            capture_output=True,
            timeout=60,
        )
        if result.returncode == 0:
            return cert, key
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert, key


class Nginx:
    def __init__(self, tmp, backend):
        self.tmp = tmp
        self.xff_port = free_port()
        self.fwd_port = free_port()
        self.ipv6_port = free_port("::1") if ipv6_loopback() else None
        self.tls_port = None
        tls_listen = ""
        certificate = make_certificate(tmp)
        if certificate is not None:
            self.tls_port = free_port()
            tls_listen = (
                f"listen 127.0.0.1:{self.tls_port} ssl;\n"
                f"        ssl_certificate {certificate[0]};\n        ssl_certificate_key {certificate[1]};"
            )
        ipv6_listen = f"listen [::1]:{self.ipv6_port};" if self.ipv6_port else ""
        conf = nginx_conf(tmp, backend, self.xff_port, self.fwd_port, tls_listen, ipv6_listen)
        if os.geteuid() == 0:
            conf = "user root;\n" + conf  # temp paths live in a root-only tmp_path
        (tmp / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited {self.proc.returncode}: {self.proc.stderr.read().decode()} {self.error_log()}")
            try:
                for port in (self.xff_port, self.fwd_port):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"nginx did not listen within {timeout}s: {self.error_log()}") from None
                time.sleep(0.02)

    def error_log(self):
        with contextlib.suppress(OSError):
            return (self.tmp / "error.log").read_text()
        return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stderr.close()


@pytest.fixture(params=["wsgi", "asgi"])
def behind_nginx(request, tmp_path):
    app = Seen.wsgi if request.param == "wsgi" else Seen.asgi
    with serve(app, proxy_headers=True, lifespan="off") as server:
        nginx = Nginx(tmp_path, server.port)
        try:
            nginx.wait_ready()
            yield nginx
        finally:
            nginx.stop()


def via(port, headers=b"", source="127.0.0.2", host="127.0.0.1", tls=False):
    """One request through nginx from ``source``; (app's view, client socket address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.settimeout(10)
    try:
        sock.bind((source, 0))
        sock.connect((host, port))
        here = sock.getsockname()
        if tls:
            import ssl

            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n" + headers + b"\r\n")
        status, _, body = read_response(sock, bytearray())
        assert status == 200, body
        return json.loads(body), here
    finally:
        sock.close()


@needs_nginx
def test_nginx_x_forwarded_for(behind_nginx):
    # The client (127.0.0.2, untrusted) spoofs an address; nginx appends the
    # real one and overwrites the scheme.
    seen, here = via(behind_nginx.xff_port, b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n")
    assert seen["client"] == ["127.0.0.2", "0"]
    assert seen["xff"] == "6.6.6.6, 127.0.0.2"
    assert seen["scheme"] == "http"


@needs_nginx
def test_nginx_x_forwarded_site_drops_a_client_forwarded_header(behind_nginx):
    # Forwarded wins when present: the X-Forwarded site must not pass on one
    # the client made up (the guide's snippet clears it).
    seen, _ = via(behind_nginx.xff_port, b"Forwarded: for=6.6.6.6;proto=https\r\n")
    assert seen["forwarded"] is None
    assert seen["client"] == ["127.0.0.2", "0"] and seen["scheme"] == "http"


@needs_nginx
def test_nginx_terminating_tls(behind_nginx):
    if behind_nginx.tls_port is None:
        pytest.skip("no openssl command or cryptography package to make a certificate")
    seen, _ = via(behind_nginx.tls_port, b"X-Forwarded-For: 6.6.6.6\r\n", tls=True)
    assert seen["client"] == ["127.0.0.2", "0"]
    assert seen["scheme"] == "https"


@needs_nginx
def test_nginx_forwarded(behind_nginx):
    seen, here = via(behind_nginx.fwd_port, b"Forwarded: for=6.6.6.6;proto=https;host=evil.example\r\nX-Forwarded-For: 7.7.7.7\r\n")
    # nginx reports the client's port too: it is the test's own socket.
    assert seen["client"] == ["127.0.0.2", str(here[1])]
    assert seen["scheme"] == "http"
    assert seen["server"] == ["site.example", "80"]
    assert seen["forwarded"].startswith("for=6.6.6.6;proto=https;host=evil.example, for=")
    assert seen["xff"] == "7.7.7.7"  # passed on, and ignored: Forwarded wins


@needs_nginx
def test_nginx_forwarded_ipv6_client(behind_nginx):
    if behind_nginx.ipv6_port is None:
        pytest.skip("no IPv6 loopback")
    seen, here = via(behind_nginx.ipv6_port, source="::1", host="::1")
    assert seen["client"] == ["::1", str(here[1])]
    assert '"[::1]:' in seen["forwarded"]
