"""Bearer token and basic auth on a real exporter: 401 with a challenge and nothing else, /healthz open."""

from __future__ import annotations

import base64
import http.client
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from exporter_helpers import base_url, http_get, samples
from web_helpers import StartApp

from exporter.app import ExporterApp, open_access_warning
from exporter.config import ListenAddress, WebConfig, parse_config
from exporter.passwords import hash_password, parse_hash

TOKEN = "s3cr3t-token-4f9a"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_file(tmp_path: Path, content: str = TOKEN + "\n") -> str:
    path = tmp_path / "exporter.token"
    path.write_text(content, encoding="utf-8")
    return str(path)


def assert_refused(response_status: int, headers: dict[str, str], body: bytes, scheme: str) -> None:
    assert response_status == 401
    assert headers["www-authenticate"].startswith(f'{scheme} realm="millwatch-exporter"')
    assert body == b"", "nothing but the challenge"


def test_bearer_token_protects_everything_but_healthz(
    start_app: StartApp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = start_app(web={"bearer_token_file": token_file(tmp_path)})
    root = base_url(app.url)
    for path in ("/metrics", "/", "/history?since=0", "/nothing-here"):
        refused = http_get(root + path)
        assert_refused(refused.status, refused.headers, refused.body, "Bearer")
    wrong = http_get(app.url, bearer("s3cr3t-token-4f9b"))
    assert_refused(wrong.status, wrong.headers, wrong.body, "Bearer")
    assert http_get(app.url, basic("admin", TOKEN)).status == 401, "the token is not a password"
    assert http_get(app.url, method="HEAD").status == 401

    granted = http_get(app.url, bearer(TOKEN))
    assert granted.status == 200 and b"millwatch_serial_up" in granted.body
    assert http_get(root + "/history?since=0", bearer(TOKEN)).status == 200
    assert http_get(root + "/", bearer(TOKEN)).status == 200
    health = http_get(root + "/healthz")
    assert (health.status, health.body) == (200, b"ok")
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(app.config)
    counted = samples(http_get(app.url, bearer(TOKEN)).text)
    assert counted['millwatch_http_rejected_total{reason="unauthorized"}'] == 7.0


@pytest.mark.parametrize("algorithm", ["scrypt", "pbkdf2-sha256", "bcrypt"])
def test_basic_auth_with_hashed_passwords(start_app: StartApp, algorithm: str) -> None:
    if algorithm == "bcrypt":
        bcrypt = pytest.importorskip("bcrypt")
        # Cost 4 keeps the test fast; `$2y$` is how htpasswd -B spells it.
        stored = bcrypt.hashpw(b"pa55 word", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)
    else:
        stored = hash_password(b"pa55 word", algorithm)
    app = start_app(web={"basic_auth_users": {"prometheus": stored}})
    assert http_get(app.url, basic("prometheus", "pa55 word")).status == 200
    for user, password in (("prometheus", "pa55 wore"), ("prometheus", ""), ("nobody", "pa55 word")):
        refused = http_get(app.url, basic(user, password))
        assert_refused(refused.status, refused.headers, refused.body, "Basic")
    refused = http_get(app.url)
    assert_refused(refused.status, refused.headers, refused.body, "Basic")
    assert http_get(app.url, {"Authorization": "Basic not-base64!"}).status == 401
    # Verified credentials are remembered briefly: the second scrape does not pay the hash again.
    assert http_get(app.url, basic("prometheus", "pa55 word")).status == 200


def test_bearer_and_basic_together_offer_both_challenges(start_app: StartApp, tmp_path: Path) -> None:
    app = start_app(
        web={
            "bearer_token_file": token_file(tmp_path),
            "basic_auth_users": {"grafana": hash_password(b"pw", "scrypt")},
        }
    )
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        response.read()
        challenges = [v for k, v in response.getheaders() if k.lower() == "www-authenticate"]
    finally:
        connection.close()
    assert response.status == 401
    assert [c.split()[0] for c in challenges] == ["Basic", "Bearer"]
    assert http_get(app.url, bearer(TOKEN)).status == 200
    assert http_get(app.url, basic("grafana", "pw")).status == 200


def test_the_status_page_shows_the_last_scrape(start_app: StartApp) -> None:
    app = start_app()
    root = base_url(app.url)
    assert "never (since the exporter started)" in http_get(root + "/").text
    assert http_get(app.url).status == 200
    page = http_get(root + "/").text
    assert "Last scrape of /metrics" in page
    assert "ago by 127.0.0.1" in page


def test_one_warning_without_auth_on_a_network_address(
    start_app: StartApp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for host in ("0.0.0.0", "::", "10.1.2.3", "machine-pc-17"):
        warning = open_access_warning(ListenAddress(host, 9817), WebConfig())
        assert warning is not None and "without authentication" in warning
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert open_access_warning(ListenAddress(host, 9817), WebConfig()) is None
    with_token = WebConfig(bearer_token=b"x")
    assert open_access_warning(ListenAddress("0.0.0.0", 9817), with_token) is None

    caplog.set_level(logging.INFO)
    start_app()  # on 127.0.0.1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # A wildcard listen address: the exporter is bound on every interface for a moment; the test
    # talks to nothing but this process.
    app = start_app(listen="0.0.0.0:0")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"listening on 0.0.0.0:{0} without authentication")
    app.stop()
    caplog.clear()
    start_app(listen="0.0.0.0:0", web={"bearer_token_file": token_file(tmp_path)}).stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_hash_password_command_prints_a_usable_hash(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "exporter.cli", "hash-password"]
    result = subprocess.run(command, input="correct horse\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed.startswith("$scrypt$ln=15,r=8,p=1$")
    assert "correct horse" not in result.stdout + result.stderr
    stored = parse_hash(printed)
    assert stored.verify(b"correct horse") and not stored.verify(b"correct horsE")

    pbkdf2 = subprocess.run(
        [*command, "--algorithm", "pbkdf2-sha256"], input="pw\n", capture_output=True, text=True, timeout=60
    )
    assert pbkdf2.returncode == 0 and parse_hash(pbkdf2.stdout.strip()).verify(b"pw")
    empty = subprocess.run(command, input="\n", capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "the password is empty" in empty.stderr


def test_a_hash_config_round_trip_through_the_cli_and_exporter_yaml(
    tmp_path: Path, start_app: StartApp
) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "hash-password"],
        input="scrape-me\n",
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    app = start_app(web={"basic_auth_users": {"central": printed}})
    assert http_get(app.url, basic("central", "scrape-me")).status == 200


def test_a_bcrypt_hash_without_the_bcrypt_package_is_a_config_error(tmp_path: Path) -> None:
    # The package cannot be removed from this venv for one test: the child process makes its import
    # fail the way a base install without millwatch[bcrypt] would.
    config = tmp_path / "exporter.yaml"
    config.write_text(
        "machine: {id: m}\nserial: {port: COM3}\nweb:\n  basic_auth_users:\n"
        "    prometheus: $2b$12$KbQiHqTrCxa6HpVv3zjAx.9Bf4X0P2L2w6C0WJ3R2k6t2T1Yv7C8a\n",
        encoding="utf-8",
    )
    code = (
        "import sys; sys.modules['bcrypt'] = None\n"
        "from exporter.cli import main\n"
        f"sys.exit(main(['--config', {str(config)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"millwatch-exporter: error: {config}:5: web.basic_auth_users.prometheus: a bcrypt hash needs the "
        "optional bcrypt package: pip install 'millwatch[bcrypt]' (or use a hash from "
        "`millwatch-exporter hash-password`, scrypt by default)"
    )


def test_web_config_errors_name_the_line_before_any_port_opens(tmp_path: Path) -> None:
    empty = tmp_path / "empty.token"
    empty.write_text("\n", encoding="utf-8")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    cases = [
        ({"bearer_token_file": str(tmp_path / "missing.token")}, "web.bearer_token_file: cannot read "),
        ({"bearer_token_file": str(empty)}, f"web.bearer_token_file: {empty} is empty"),
        ({"basic_auth_users": {"admin": "hunter2"}}, "web.basic_auth_users.admin: not a password hash"),
        ({"basic_auth_users": {"a:b": hash_password(b"x")}}, "web.basic_auth_users: expected a user name"),
        ({"tls_cert_file": str(empty)}, "web.tls_key_file: tls_cert_file and tls_key_file go together"),
        ({"tls_client_ca_file": str(empty)}, "web.tls_client_ca_file: needs tls_cert_file and tls_key_file"),
        ({"tls_cert_file": str(empty), "tls_key_file": str(empty)}, f"web.tls_cert_file: {empty} is empty"),
        (
            {"tls_cert_file": str(junk), "tls_key_file": str(junk)},
            f"web.tls_cert_file: {junk} holds no PEM certificate",
        ),
        ({"max_connections": 0}, "web.max_connections: expected an integer 1-1024, got 0"),
        ({"header_read_timeout": "soon"}, "web.header_read_timeout: expected a duration"),
        ({"max_conections": 3}, "web.max_conections: unknown key (did you mean 'max_connections'?)"),
    ]
    for web, expected in cases:
        config = tmp_path / "exporter.yaml"
        lines = ["machine: {id: m}", "serial: {port: COM3}", "web:"]
        for key, value in web.items():
            if isinstance(value, dict):
                lines.append(f"  {key}:")
                lines += [f"    '{k}': '{v}'" for k, v in value.items()]
            else:
                lines.append(f"  {key}: '{value}'" if isinstance(value, str) else f"  {key}: {value}")
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        from exporter.config import load_config
        from exporter.errors import ConfigError

        with pytest.raises(ConfigError) as caught:
            load_config(config)
        message = str(caught.value)
        assert message.startswith(f"{config}:"), message
        assert expected in message, (expected, message)
        assert caught.value.line is not None and caught.value.line >= 3, message


def test_a_relative_token_file_is_found_next_to_the_config(tmp_path: Path, raw_pty: object) -> None:
    (tmp_path / "token").write_text(TOKEN, encoding="utf-8")
    config = tmp_path / "exporter.yaml"
    config.write_text(
        f"machine: {{id: m}}\nlisten: 127.0.0.1:0\nserial: {{port: {raw_pty.path}}}\n"  # type: ignore[attr-defined]
        f"buffer: {{path: b.sqlite}}\nweb: {{bearer_token_file: token}}\n",
        encoding="utf-8",
    )
    from exporter.config import load_config

    loaded = load_config(config)
    assert loaded.web.bearer_token_file == str(tmp_path / "token")
    with ExporterApp(loaded) as app:
        assert http_get(app.url, bearer(TOKEN)).status == 200
        assert http_get(app.url).status == 401
    assert parse_config({"machine": {"id": "m"}, "serial": {"port": "COM3"}}, "t").web == WebConfig()
