"""`millwatch user …` and `millwatch token …` as processes; then the whole flow against a real
`millwatch serve` at debug level, with every secret searched for in its logs and answers; and the
server speaking TLS itself."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
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


@pytest.mark.timeout(600)
def test_the_whole_flow_at_debug_level_leaks_no_secret(tmp_path: Path, db: str) -> None:
    password = "correct-horse-battery"
    wrong_password = "wrong-horse-battery"
    assert millwatch(db, "user", "add", "ada", "--role", "admin", stdin=password + "\n").returncode == 0
    created = millwatch(db, "token", "create", "script", "--role", "viewer")
    token = created.stdout.strip()
    cli_output = created.stderr

    inventory = tmp_path / "machines.yaml"
    inventory.write_text("machines: []\n")
    answers: list[str] = []

    def record(response: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "set-cookie")
        answers.append(headers + "\n" + response.text)
        return response

    args = ["serve", "--port", "0", "--db", db, "--inventory", str(inventory), "--log-level", "debug"]
    with MillwatchProcess(args, tmp_path, env=CLOSED) as server:
        port = server.wait_serving()
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            record(client.post("/api/auth/login", json={"name": "ada", "password": wrong_password}))
            record(client.post("/api/auth/login", json={"name": "nobody", "password": password}))
            login = client.post("/api/auth/login", json={"name": "ada", "password": password})
            assert login.status_code == 200
            session = login.cookies["millwatch_session"]
            answers.append(login.text)  # the body: its Set-Cookie is where the session is meant to go
            csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
            assert record(client.get("/api/auth/me")).status_code == 200
            assert record(client.get("/api/admin/tokens")).status_code == 200
            assert record(client.get("/api/admin/users")).status_code == 200
            assert record(client.post("/api/auth/logout", headers=csrf)).status_code == 204
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
        with connect(f"ws://127.0.0.1:{port}/api/live", additional_headers=auth) as ws:
            answers.append(str(ws.recv(timeout=10)))
        assert server.stop(signal.SIGINT) == 0
        logs = server.stderr + server.stdout + cli_output

    assert "DEBUG" in logs and "POST /api/auth/login" in logs  # debug level, access log on
    assert "login from 127.0.0.1 refused: wrong name or password" in logs
    everything = logs + "\n".join(answers)
    for name, secret in {
        "password": password,
        "wrong password": wrong_password,
        "token": token,
        "token without prefix": token.removeprefix("mwt_"),
        "session cookie": session,
    }.items():
        assert secret not in everything, f"the {name} appears in a log line or an answer"


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
