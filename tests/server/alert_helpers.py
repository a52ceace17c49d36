"""Real receivers for alert notifications on loopback: an SMTP server (aiosmtpd, STARTTLS and AUTH
with a trustme certificate) and a webhook receiver (a stdlib HTTP server)."""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from support import free_port

SMTP_USER = "alerts"
SMTP_PASSWORD = "correct horse battery staple"
HMAC_KEY = "webhook-signing-key-for-tests"


@dataclass
class Mailbox:
    host: str
    port: int
    ca_file: Path
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[Message]:
        with self.lock:
            return list(self.messages)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.box.lock:
            self.box.messages.append(message_from_bytes(content))
        return "250 OK"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == SMTP_USER.encode()
        and (data.password == SMTP_PASSWORD.encode())
    )
    return AuthResult(success=ok)


@contextlib.contextmanager
def smtp_server(folder: Path) -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1 that requires STARTTLS and AUTH (user/password above)."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = folder / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    box = Mailbox("127.0.0.1", free_port(), ca_file)
    controller = Controller(
        _Handler(box),
        hostname=box.host,
        port=box.port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=_authenticator,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Hook:
    url: str
    status: int = 200
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self.lock:
            return [(headers, json.loads(body)) for headers, body in self.posts]

    def raw(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.posts)


@contextlib.contextmanager
def webhook_receiver() -> Iterator[Hook]:
    """An HTTP server on 127.0.0.1:0 that keeps every POST and answers `hook.status`."""
    hook = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            length = min(int(self.headers.get("Content-Length", "0")), 10_000_000)
            body = self.rfile.read(length)
            with hook.lock:
                hook.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(hook.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def notifications_yaml(
    box: Mailbox | None,
    hook: Hook | None,
    *,
    group_wait: str = "0.2s",
    repeat: str = "1h",
    backoff: str = "0.1s",
) -> str:
    """A notifications.yaml with an email channel to `box` and a webhook channel to `hook`."""
    lines = [
        "notifications:",
        f"  group_wait: {group_wait}",
        f"  repeat_interval: {repeat}",
        f"  retry_backoff: {backoff}",
        "  channels:",
    ]
    if box is not None:
        lines += [
            "    mail:",
            "      type: email",
            f"      host: {box.host}",
            f"      port: {box.port}",
            "      security: starttls",
            f"      ca_file: {box.ca_file}",
            f"      username: {SMTP_USER}",
            "      password_file: smtp.password",
            "      from: millwatch@plant.test",
            "      to: [oncall@plant.test]",
        ]
    if hook is not None:
        lines += [
            "    hook:",
            "      type: webhook",
            f"      url: {hook.url}",
            "      hmac_key_env: MILLWATCH_TEST_HMAC_KEY",
            "      retries: 2",
        ]
    return "\n".join(lines) + "\n"
