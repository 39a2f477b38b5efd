"""TLS: HTTPS with a certificate the test generates, plain HTTP on the TLS
port and TLS on the plain port both answered clearly."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl

import httpx
import pytest

from servers import connect, recv_until_closed, serve

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost/127.0.0.1: (certfile, keyfile)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    certfile = directory / "cert.pem"
    keyfile = directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(certfile), str(keyfile)


def wsgi_scheme(environ, start_response):
    body = f"{environ['wsgi.url_scheme']} {environ['SERVER_PROTOCOL']}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


async def asgi_scheme(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["scheme"].encode()})


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_https_wsgi_and_asgi(certificate, loop):
    pytest.importorskip(loop)
    certfile, keyfile = certificate
    for app, expected in ((wsgi_scheme, "https HTTP/1.1"), (asgi_scheme, "https")):
        with serve(app, ssl_certfile=certfile, ssl_keyfile=keyfile, loop=loop) as server:
            with httpx.Client(verify=ssl.create_default_context(cafile=certfile)) as client:
                for _ in range(3):  # keep-alive over TLS
                    response = client.get(f"https://127.0.0.1:{server.port}/")
                    assert response.text == expected
            assert server.addresses()[0].startswith("https://")


def test_large_body_over_tls(certificate):
    certfile, keyfile = certificate

    def echo(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    payload = bytes(range(256)) * 8192  # 2 MiB
    with serve(echo, ssl_certfile=certfile, ssl_keyfile=keyfile) as server:
        with httpx.Client(verify=ssl.create_default_context(cafile=certfile), timeout=30) as client:
            assert client.post(f"https://127.0.0.1:{server.port}/", content=payload).content == payload


def test_plain_http_on_the_tls_port_gets_a_clear_400(certificate):
    certfile, keyfile = certificate
    with serve(wsgi_scheme, ssl_certfile=certfile, ssl_keyfile=keyfile) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"This port speaks HTTPS" in data


def test_tls_on_the_plain_port_gets_a_400(certificate, caplog):
    certfile, _ = certificate
    with serve(wsgi_scheme) as server:
        context = ssl.create_default_context(cafile=certfile)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            with pytest.raises(ssl.SSLError):
                context.wrap_socket(raw, server_hostname="localhost")
        # The server answered the handshake with plain HTTP and went on serving.
        assert httpx.get(f"http://127.0.0.1:{server.port}/").text == "http HTTP/1.1"


def test_bad_tls_options_are_one_line_errors(tmp_path, certificate):
    from fastbase.config import Config, ConfigError

    with pytest.raises(ConfigError, match="--ssl-certfile '.*missing.pem' is not a file"):
        Config(ssl_certfile=str(tmp_path / "missing.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match="TLS set-up failed"):
        Config(ssl_certfile=str(garbage)).ssl_context()
    with pytest.raises(ConfigError, match="--ssl-keyfile needs --ssl-certfile"):
        Config(ssl_keyfile=certificate[1])
