"""TLS and mutual TLS on a real exporter, with a CA and certificates made in the test."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import warnings
from pathlib import Path

import pytest
from tls_certs import Pki, make_pki
from web_helpers import StartApp

from exporter.config import load_config
from exporter.errors import ConfigError


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    made = make_pki(tmp_path_factory.mktemp("pki"))
    if made is None:
        pytest.skip("making test certificates needs the cryptography package or the openssl command")
    return made


def client_context(
    ca: Path | None, cert: Path | None = None, key: Path | None = None, *, tls12: bool = False
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if ca is None:  # trust nothing at all, not even the system store
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_default_certs()
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def https_get(port: int, context: ssl.SSLContext, path: str = "/metrics") -> tuple[int, bytes]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_an_https_scrape_succeeds_with_the_ca_and_fails_without(start_app: StartApp, pki: Pki) -> None:
    app = start_app(web={"tls_cert_file": str(pki.server_cert), "tls_key_file": str(pki.server_key)})
    assert app.url.startswith("https://127.0.0.1:")
    status, body = https_get(app.port, client_context(pki.ca_cert))
    assert status == 200 and b"millwatch_serial_up" in body
    assert https_get(app.port, client_context(pki.ca_cert, tls12=True))[0] == 200, "TLS 1.2 is accepted"
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(app.port, client_context(None))
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(app.port, client_context(pki.other_ca_cert))
    # Plain HTTP on the TLS port gets no answer a client could take for metrics.
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert b"millwatch_serial_up" not in answer
    assert https_get(app.port, client_context(pki.ca_cert))[0] == 200, "and the server still serves"


def test_tls_below_1_2_is_refused_by_the_server(start_app: StartApp, pki: Pki) -> None:
    app = start_app(web={"tls_cert_file": str(pki.server_cert), "tls_key_file": str(pki.server_key)})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(pki.ca_cert))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
        try:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            pytest.skip("this OpenSSL cannot offer TLS 1.1")
    with pytest.raises(ssl.SSLError) as caught:
        https_get(app.port, context)
    if "NO_PROTOCOLS_AVAILABLE" in str(caught.value).upper():
        pytest.skip("this OpenSSL cannot offer TLS 1.1")
    assert "PROTOCOL_VERSION" in str(caught.value).upper(), "the server's alert, not the client's refusal"


def test_mutual_tls_needs_a_client_certificate_from_the_client_ca(start_app: StartApp, pki: Pki) -> None:
    app = start_app(
        web={
            "tls_cert_file": str(pki.server_cert),
            "tls_key_file": str(pki.server_key),
            "tls_client_ca_file": str(pki.ca_cert),
        }
    )
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(app.port, client_context(pki.ca_cert))  # no client certificate
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(app.port, client_context(pki.ca_cert, pki.other_client_cert, pki.other_client_key))
    status, body = https_get(app.port, client_context(pki.ca_cert, pki.client_cert, pki.client_key))
    assert status == 200 and b"millwatch_serial_up" in body
    assert b'millwatch_http_rejected_total{reason="tls_handshake"} 2.0' in body


def test_tls_with_a_bearer_token_and_keep_alive(start_app: StartApp, pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-123\n", encoding="utf-8")
    app = start_app(
        web={
            "tls_cert_file": str(pki.server_cert),
            "tls_key_file": str(pki.server_key),
            "bearer_token_file": str(tmp_path / "token"),
        }
    )
    connection = http.client.HTTPSConnection(
        "127.0.0.1", app.port, timeout=10, context=client_context(pki.ca_cert)
    )
    try:
        connection.request("GET", "/metrics")
        refused = connection.getresponse()
        assert refused.status == 401 and refused.read() == b""
        sock = connection.sock
        connection.request("GET", "/metrics", headers={"Authorization": "Bearer tok-123"})
        granted = connection.getresponse()
        assert granted.status == 200 and b"millwatch_serial_up" in granted.read()
        assert connection.sock is sock, "both requests on one TLS connection"
    finally:
        connection.close()


def test_silent_tls_clients_do_not_block_an_https_scrape(start_app: StartApp, pki: Pki) -> None:
    app = start_app(
        web={"tls_cert_file": str(pki.server_cert), "tls_key_file": str(pki.server_key), "max_connections": 4}
    )
    silent = [socket.create_connection(("127.0.0.1", app.port), timeout=10) for _ in range(30)]
    try:
        answers: list[int] = []
        scrape = threading.Thread(
            target=lambda: answers.append(https_get(app.port, client_context(pki.ca_cert))[0])
        )
        started = time.monotonic()
        scrape.start()
        scrape.join(30)
        assert answers == [200] and time.monotonic() - started < 10.0
    finally:
        for sock in silent:
            sock.close()


def test_tls_file_problems_are_config_errors_with_their_line(tmp_path: Path, pki: Pki) -> None:
    config = tmp_path / "exporter.yaml"
    config.write_text(
        "machine: {id: m}\nserial: {port: COM3}\nweb:\n"
        f"  tls_cert_file: {pki.server_cert}\n  tls_key_file: {pki.client_key}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(caught.value) == f"{config}:5: web.tls_key_file: the key does not belong to the certificate"
    config.write_text(
        "machine: {id: m}\nserial: {port: COM3}\nweb:\n"
        f"  tls_cert_file: {pki.server_cert}\n  tls_key_file: {tmp_path / 'nope.key'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(caught.value) == (
        f"{config}:5: web.tls_key_file: cannot read {tmp_path / 'nope.key'}: No such file or directory"
    )
