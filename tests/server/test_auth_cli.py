"""`millwatch user …` and `millwatch token …` as processes; then the whole flow against a real
`millwatch serve` at debug level, with every secret searched for in its logs and answers; and the
server speaking TLS itself."""

from __future__ import annotations

import base64
import json
import signal
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from push_helpers import body as push_body
from support import MillwatchProcess, run_millwatch, wait_until
from websockets.sync.client import connect

CLOSED = {"MILLWATCH_ANONYMOUS_READ": "false"}


def millwatch(db: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_millwatch([*args, "--db", db], input=stdin)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'millwatch.db'}"


# Each command is a process that hashes with argon2 (seconds each on a loaded 2-core machine).
@pytest.mark.timeout(600)
def test_users_are_added_listed_changed_and_removed(db: str) -> None:
    added = millwatch(db, "user", "add", "ada", "--role", "admin", stdin="first-password\n")
    assert (added.returncode, added.stdout) == (0, "user ada added (admin)\n"), added.stderr
    assert millwatch(db, "user", "add", "vic", stdin="vic-password\n").returncode == 0

    listed = millwatch(db, "user", "list")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "CREATED", "PASSWORD", "CHANGED"]
    assert [line.split()[:2] for line in lines[1:]] == [["ada", "admin"], ["vic", "viewer"]]
    assert "first-password" not in listed.stdout and "$argon2" not in listed.stdout

    again = millwatch(db, "user", "add", "ada", "--role", "viewer", stdin="another-password\n")
    assert (again.returncode, again.stderr) == (2, "millwatch: error: a user named 'ada' exists already\n")
    short = millwatch(db, "user", "add", "bob", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    empty = millwatch(db, "user", "add", "bob", stdin="")
    assert empty.returncode == 2 and "no password on stdin" in empty.stderr
    bad_name = millwatch(db, "user", "add", "no spaces", stdin="long-enough\n")
    assert bad_name.returncode == 2 and "bad name 'no spaces'" in bad_name.stderr

    assert millwatch(db, "user", "passwd", "vic", stdin="changed-password\n").returncode == 0
    assert millwatch(db, "user", "passwd", "nobody", stdin="changed-password\n").stderr == (
        "millwatch: error: no user named 'nobody'\n"
    )
    last_admin = millwatch(db, "user", "remove", "ada")
    assert last_admin.returncode == 2 and "last admin" in last_admin.stderr
    assert millwatch(db, "user", "remove", "vic").stdout == "user vic removed; their sessions ended\n"
    assert [line.split()[0] for line in millwatch(db, "user", "list").stdout.splitlines()[1:]] == ["ada"]


@pytest.mark.timeout(600)
def test_a_token_is_printed_once_and_listed_without_it(db: str) -> None:
    created = millwatch(db, "token", "create", "grafana", "--role", "viewer")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("mwt_") and len(token) >= 4 + 43 and created.stdout == token + "\n"
    assert "not shown again" in created.stderr and token not in created.stderr

    listed = millwatch(db, "token", "list")
    assert listed.stdout.splitlines()[0].split() == ["NAME", "ROLE", "CREATED", "LAST", "USED"]
    assert listed.stdout.splitlines()[1].split()[:2] == ["grafana", "viewer"]
    assert listed.stdout.splitlines()[1].endswith("never")
    assert token not in listed.stdout

    assert millwatch(db, "token", "create", "grafana").returncode == 2
    assert millwatch(db, "token", "revoke", "grafana").stdout == "token grafana revoked\n"
    assert (
        millwatch(db, "token", "revoke", "grafana").stderr == "millwatch: error: no token named 'grafana'\n"
    )
    assert run_millwatch(["token", "create", "x", "--role", "root"]).returncode == 2  # argparse: bad choice


class CredentialsSeen:
    """A loopback exporter that wants credentials: it answers /metrics and keeps each Authorization
    header it was sent (so the test knows the scraper sent the inventory's secrets)."""

    def __init__(self) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                seen.append(self.headers.get("Authorization", ""))
                body = b"# TYPE machine_temperature_celsius gauge\nmachine_temperature_celsius 41.5\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.timeout(600)
def test_the_whole_flow_at_debug_level_leaks_no_secret(tmp_path: Path, db: str) -> None:
    password = "correct-horse-battery"
    wrong_password = "wrong-horse-battery"
    viewer_password = "viewer-horse-battery"
    assert millwatch(db, "user", "add", "ada", "--role", "admin", stdin=password + "\n").returncode == 0
    added = millwatch(db, "user", "add", "vic", "--role", "viewer", stdin=viewer_password + "\n")
    assert added.returncode == 0
    created = millwatch(db, "token", "create", "script", "--role", "viewer")
    token = created.stdout.strip()
    cli_output = created.stderr

    # The inventory's own secrets: a password and a bearer token the scraper sends to exporters.
    exporter = CredentialsSeen()
    basic_password = "inventory-basic-secret"
    exporter_token = "inventory-bearer-secret"
    (tmp_path / "basic.pass").write_text(basic_password + "\n")
    (tmp_path / "exporter.token").write_text(exporter_token + "\n")
    inventory = tmp_path / "machines.yaml"
    inventory.write_text(
        f"""\
defaults: {{scrape_interval: 1s}}
machines:
  - id: with_basic
    url: http://127.0.0.1:{exporter.port}/metrics
    auth: {{basic: {{username: scraper, password_file: {tmp_path / "basic.pass"}}}}}
  - id: with_bearer
    url: http://127.0.0.1:{exporter.port}/metrics
    auth: {{bearer_token_file: {tmp_path / "exporter.token"}}}
  - id: pusher
    mode: push
"""
    )
    keyed = run_millwatch(["key", "create", "pusher", "--db", db, "--inventory", str(inventory)])
    assert keyed.returncode == 0, keyed.stderr
    machine_key = keyed.stdout.strip()
    cli_output += keyed.stderr
    answers: list[str] = []

    def record(response: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "set-cookie")
        answers.append(headers + "\n" + response.text)
        return response

    args = ["serve", "--port", "0", "--db", db, "--inventory", str(inventory), "--log-level", "debug"]
    try:
        with MillwatchProcess(args, tmp_path, env=CLOSED) as server:
            port = server.wait_serving()
            base = f"http://127.0.0.1:{port}"
            assert record(httpx.get(f"{base}/api/machines", timeout=30)).status_code == 401
            with httpx.Client(base_url=base, timeout=30) as client:
                record(client.post("/api/auth/login", json={"name": "ada", "password": wrong_password}))
                record(client.post("/api/auth/login", json={"name": "nobody", "password": password}))
                login = client.post("/api/auth/login", json={"name": "ada", "password": password})
                assert login.status_code == 200
                session = login.cookies["millwatch_session"]
                csrf_token = login.json()["csrf_token"]
                answers.append(login.text)  # the body: its Set-Cookie is where the session is meant to go
                csrf = {"X-CSRF-Token": csrf_token}
                assert record(client.get("/api/auth/me")).status_code == 200
                assert record(client.get("/api/admin/tokens")).status_code == 200
                assert record(client.get("/api/admin/users")).status_code == 200
                assert record(client.get("/api/inventory/machines/with_basic")).status_code == 200
                assert record(client.post("/api/auth/logout", headers=csrf)).status_code == 204
            with httpx.Client(base_url=base, timeout=30) as client:
                viewer = client.post("/api/auth/login", json={"name": "vic", "password": viewer_password})
                assert viewer.status_code == 200
                assert record(client.get("/api/machines")).status_code == 200
                assert record(client.get("/api/admin/users")).status_code == 403
            auth = {"Authorization": f"Bearer {token}"}
            for path in ("/api/machines", "/api/sd", "/metrics", "/api/config", "/api/auth/me"):
                assert record(httpx.get(base + path, headers=auth, timeout=30)).status_code == 200
            assert record(httpx.get(f"{base}/api/admin/users", headers=auth, timeout=30)).status_code == 403
            assert (
                record(
                    httpx.get(f"{base}/api/machines", headers={"Authorization": "Bearer " + token[:-2]})
                ).status_code
                == 401
            )
            pushed = httpx.post(
                f"{base}/api/ingest",
                content=json.dumps(push_body("pusher")),
                headers={"Authorization": f"Bearer {machine_key}", "Content-Type": "application/json"},
                timeout=30,
            )
            assert record(pushed).status_code == 200, pushed.text
            with connect(f"ws://127.0.0.1:{port}/api/live", additional_headers=auth) as ws:
                answers.append(str(ws.recv(timeout=10)))

            def both_scraped_up() -> bool:
                machines = httpx.get(f"{base}/api/machines", headers=auth, timeout=30).json()["machines"]
                status = {m["id"]: m["status"] for m in machines}
                return status.get("with_basic") == "up" and status.get("with_bearer") == "up"

            wait_until(both_scraped_up, timeout=60, what="both machines with credentials scraped")
            record(httpx.get(f"{base}/api/machines", headers=auth, timeout=30))
            assert server.stop(signal.SIGINT) == 0
            logs = server.stderr + server.stdout + cli_output
    finally:
        exporter.close()

    # The exporter was sent the inventory's secrets, so they were in the scraper's hands.
    assert f"Bearer {exporter_token}" in exporter.seen
    assert "Basic " + base64.b64encode(f"scraper:{basic_password}".encode()).decode() in exporter.seen
    assert "DEBUG" in logs and "POST /api/auth/login" in logs  # debug level, access log on
    assert "login from 127.0.0.1 refused: wrong name or password" in logs
    everything = logs + "\n".join(answers)
    for name, secret in {
        "password": password,
        "wrong password": wrong_password,
        "viewer's password": viewer_password,
        "token": token,
        "token without prefix": token.removeprefix("mwt_"),
        "session cookie": session,
        "machine key": machine_key,
        "machine key without prefix": machine_key.split("_", 1)[1],
        "inventory's basic password": basic_password,
        "inventory's bearer token": exporter_token,
        "basic credentials as sent": base64.b64encode(f"scraper:{basic_password}".encode()).decode(),
    }.items():
        assert secret not in everything, f"the {name} appears in a log line or an answer"
    # The session's CSRF token is meant for the page (login and /api/auth/me answer it), never a log.
    assert csrf_token not in logs


@pytest.mark.timeout(600)
def test_serve_speaks_tls_itself_and_marks_the_cookie_secure(tmp_path: Path, db: str) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert millwatch(db, "user", "add", "ada", "--role", "admin", stdin="tls-password\n").returncode == 0
    inventory = tmp_path / "machines.yaml"
    inventory.write_text("machines: []\n")
    args = ["serve", "--port", "0", "--db", db, "--inventory", str(inventory)]
    args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    with MillwatchProcess(args, tmp_path, env=CLOSED) as server:
        port = server.wait_serving()
        base = f"https://127.0.0.1:{port}"
        trust = ssl.create_default_context(cafile=str(cert))

        def answers() -> bool:
            assert server.running(), server.stderr
            try:
                return httpx.get(f"{base}/healthz", verify=trust, timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, timeout=30, what="the TLS server")
        login = httpx.post(
            f"{base}/api/auth/login", json={"name": "ada", "password": "tls-password"}, verify=trust
        )
        assert login.status_code == 200
        assert "; secure" in login.headers["set-cookie"].lower()
        assert f"serving {base}/" in server.stdout
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)  # no plain HTTP on that port
        assert server.stop(signal.SIGINT) == 0
    assert json.dumps(server.stderr).count("Traceback") == 0


def test_the_log_filter_masks_credentials_libraries_would_log() -> None:
    from server.logredact import redact

    assert redact("< authorization: Bearer mwt_abc") == "< authorization: <redacted>"
    assert redact("< Cookie: millwatch_session=s3cr3t; other=1") == "< Cookie: <redacted>"
    assert (
        redact("headers [(b'authorization', b'Bearer xyz')]") == "headers [(b'authorization', b'<redacted>')]"
    )
    assert redact("token mwt_Abc-_9 used") == "token mwt_<redacted> used"
    assert redact("GET /api/machines 200") == "GET /api/machines 200"
