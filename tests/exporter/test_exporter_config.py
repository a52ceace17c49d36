"""exporter.yaml → ExporterConfig: defaults, overrides, and every error as one `file:line: key: message`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exporter.config import (
    DEFAULT_ALIASES,
    DEFAULT_CHANNELS,
    CollectorsConfig,
    ExporterConfig,
    ListenAddress,
    load_config,
    parse_config,
)
from exporter.errors import ConfigError
from millwatch_common.durations import format_duration, parse_duration

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """\
machine:
  id: ironcast_berlin
serial:
  port: COM3
"""


def write(tmp_path: Path, text: str, name: str = "exporter.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message
    prefix = f"{path}"
    assert message.startswith(prefix)
    return message[len(prefix) :]


# -- durations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
        ("1.5s", 1.5),
        ("1m30s", 90.0),
        ("1h 15m", 4500.0),
        ("30", 30.0),
        (12, 12.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["soon", "30 sec", "s", "1m-30s", "-5s", "5x", "", True, None, [1], float("nan"), -1]
)
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_display() -> None:
    assert [format_duration(s) for s in (0.25, 30, 300, 86400)] == ["250ms", "30s", "5m", "24h"]


# -- valid files -------------------------------------------------------------------------------------


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.machine.id == "ironcast_berlin"
    assert config.machine.name == "ironcast_berlin"
    assert config.listen == ListenAddress("0.0.0.0", 9817)
    serial = config.serial
    assert (serial.port, serial.baudrate, serial.framing, serial.format, serial.mode) == (
        "COM3",
        9600,
        "8N1",
        "kv",
        "stream",
    )
    assert serial.stale_after == 30.0
    assert serial.max_line_bytes == 1024
    assert dict(serial.aliases) == {"T": "temperature", "P": "pressure", "S": "speed", "RPM": "speed"}
    assert config.channels == DEFAULT_CHANNELS
    assert [c.metric for c in config.channels] == [
        "machine_temperature_celsius",
        "machine_pressure_bar",
        "machine_speed_rpm",
    ]
    assert config.buffer.retention == 86400.0
    assert config.buffer.path == str(tmp_path / "millwatch-buffer.sqlite"), (
        "relative to the config file's folder"
    )


def test_every_key_set(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
machine: {id: press-7, name: "Press 7, hall B"}
listen: "[::1]:0"
serial:
  port: socket://127.0.0.1:7000
  baudrate: 19200
  bytesize: 7
  parity: even
  stopbits: 1.5
  format: kv
  mode: stream
  stale_after: 500ms
  max_line_bytes: 64
  aliases: {TEMP: temperature, RPM: null}
channels:
  temperature: {scale: 0.1, offset: -2}
  speed: null
  humidity: {metric: machine_humidity_ratio, scale: 0.01, help: Relative humidity.}
buffer: {path: /var/lib/millwatch/buffer.sqlite, retention: 2h}
web: {bearer_token_file: null, basic_auth_users: {}, tls_cert_file: "", tls_key_file: null}
push: {}
""",
        )
    )
    assert config.machine.name == "Press 7, hall B"
    assert config.listen == ListenAddress("::1", 0)
    assert str(config.listen) == "[::1]:0"
    assert config.serial.framing == "7E1.5"
    assert config.serial.stale_after == 0.5
    assert config.serial.aliases == {"T": "temperature", "P": "pressure", "S": "speed", "TEMP": "temperature"}
    keys = {c.key: c for c in config.channels}
    assert list(keys) == ["temperature", "pressure", "humidity"]
    assert keys["temperature"].metric == "machine_temperature_celsius"
    assert keys["temperature"].apply(700) == pytest.approx(68.0)
    assert keys["humidity"].apply(40) == pytest.approx(0.4)
    assert keys["humidity"].help == "Relative humidity."
    assert config.buffer.path == "/var/lib/millwatch/buffer.sqlite"
    assert config.buffer.retention == 7200.0


def test_empty_file_with_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    config = load_config(
        path, {"machine.id": "lathe_2", "serial.port": "loop://", "listen": "127.0.0.1:9900"}
    )
    assert (config.machine.id, config.serial.port, config.listen.port) == ("lathe_2", "loop://", 9900)


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "listen: 0.0.0.0:9817\nbuffer: {path: data/buf.sqlite}\n")
    config = load_config(
        path,
        {
            "listen": "127.0.0.1:0",
            "serial.port": "/dev/ttyS1",
            "machine.id": "other",
            "buffer.path": "x.sqlite",
        },
    )
    assert config.listen == ListenAddress("127.0.0.1", 0)
    assert config.serial.port == "/dev/ttyS1"
    assert config.machine.id == "other"
    assert config.buffer.path == "x.sqlite", (
        "a path from the command line stays relative to the working directory"
    )


def test_without_a_file_the_flags_must_give_the_required_keys() -> None:
    config = load_config(None, {"machine.id": "m1", "serial.port": "COM4"})
    assert config.source == "command line"
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"serial.port": "COM4"})
    assert str(caught.value) == "command line: machine.id: required key is missing"


def test_a_bad_override_is_blamed_on_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"listen": "localhost"})
    assert str(caught.value) == (
        "command line: listen: expected host:port (for example 0.0.0.0:9817 or [::]:9817), got 'localhost'"
    )


def test_parse_config_builds_configs_in_code() -> None:
    config = parse_config(
        {
            "machine": {"id": "demo_01", "name": "Demo 01"},
            "listen": "127.0.0.1:0",
            "serial": {"port": "/dev/pts/9"},
        },
        "demo",
    )
    assert isinstance(config, ExporterConfig)
    assert config.buffer.path == "./millwatch-buffer.sqlite"
    with pytest.raises(ConfigError) as caught:
        parse_config({"machine": {"id": "Demo 01"}, "serial": {"port": "x"}}, "demo")
    assert (
        str(caught.value)
        == "demo: machine.id: expected an id of lowercase letters, digits, '_' or '-', got 'Demo 01'"
    )


def test_the_example_file_loads_and_documents_every_key() -> None:
    example = REPO / "exporter" / "exporter.example.yaml"
    config = load_config(example)
    assert config.machine.id == "ironcast_berlin"
    assert config.serial.port == "/dev/ttyUSB0"
    assert config.channels == DEFAULT_CHANNELS
    assert dict(config.serial.aliases) == dict(DEFAULT_ALIASES)
    text = example.read_text(encoding="utf-8")
    for key in (
        "baudrate:",
        "bytesize:",
        "parity:",
        "stopbits:",
        "format:",
        "mode:",
        "stale_after:",
        "max_line_bytes:",
        "aliases:",
        "scale:",
        "offset:",
        "help:",
        "retention:",
        "max_bytes:",
        "fields:",
        "separator:",
        "header:",
        "pattern:",
        "command:",
        "every:",
        "answer_timeout:",
        "encoding:",
        "line_ending:",
        "read_timeout:",
        "collectors:",
        "diskio:",
        "web:",
        "push:",
    ):
        assert key in text, key


# -- errors, with their exact one-line text ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "machine:\n  id: ironcast_berlin\n  name: IronCast Berlin\nlisten: 0.0.0.0:9817\nserial:\n"
            "  port: COM3\n  baudrate: fast\n",
            ":7: serial.baudrate: expected a positive integer, got 'fast'",
        ),
        (MINIMAL + "  baudrate: 0\n", ":5: serial.baudrate: expected a positive integer, got 0"),
        (MINIMAL + "  baudrat: 9600\n", ":5: serial.baudrat: unknown key (did you mean 'baudrate'?)"),
        (
            MINIMAL + "colour: blue\n",
            ":5: colour: unknown key "
            "(expected one of: machine, listen, serial, channels, buffer, collectors, web, push)",
        ),
        ("serial:\n  port: COM3\n", ": machine.id: required key is missing"),
        ("machine:\n  name: X\nserial: {port: COM3}\n", ":1: machine.id: required key is missing"),
        (
            "machine: {id: Ironcast}\nserial: {port: COM3}\n",
            ":1: machine.id: expected an id of lowercase letters, digits, '_' or '-', got 'Ironcast'",
        ),
        ("machine: {id: a}\nserial: {baudrate: 9600}\n", ":2: serial.port: required key is missing"),
        ("machine: {id: a}\nserial: COM3\n", ":2: serial: expected a mapping, got 'COM3'"),
        (
            "machine: {id: a}\nserial: {port: ''}\n",
            ":2: serial.port: expected a serial port such as COM3 or /dev/ttyUSB0, got ''",
        ),
        (MINIMAL + "  format: xml\n", ":5: serial.format: expected 'kv', 'json', 'csv', 'regex', got 'xml'"),
        (MINIMAL + "  mode: push\n", ":5: serial.mode: expected 'stream', 'poll', got 'push'"),
        (
            MINIMAL + "  mode: poll\n",
            ":3: serial.command: required with mode 'poll': what to send to the sensor",
        ),
        (
            MINIMAL + "  command: READ\n",
            ":5: serial.command: only used with mode 'poll', but mode is 'stream'",
        ),
        (MINIMAL + "  every: 5s\n", ":5: serial.every: only used with mode 'poll', but mode is 'stream'"),
        (
            MINIMAL + "  mode: poll\n  command: READ\n  every: 1s\n  answer_timeout: 2s\n",
            ":8: serial.answer_timeout: answer_timeout (2s) must not be longer than every (1s): "
            "the next command would be sent while waiting",
        ),
        (
            MINIMAL + "  format: regex\n",
            ":3: serial.pattern: required with format 'regex': a pattern with named groups",
        ),
        (
            MINIMAL + "  format: regex\n  pattern: 'T:([0-9.]+)'\n",
            ":6: serial.pattern: the pattern has no named group: name each reading, as in "
            "(?P<temperature>[-\\d.]+)",
        ),
        (
            MINIMAL + "  format: regex\n  pattern: 'T:(?P<t>[0-9.]+'\n",
            ":6: serial.pattern: not a valid regular expression: missing ), unterminated subpattern "
            "at position 2",
        ),
        (
            MINIMAL + "  pattern: 'T:(?P<t>.*)'\n",
            ":5: serial.pattern: only used with format 'regex', but format is 'kv'",
        ),
        (
            MINIMAL + "  format: csv\n",
            ":3: serial.fields: required with format 'csv': the column names in order",
        ),
        (
            MINIMAL + "  format: csv\n  fields: [a, a]\n",
            ":6: serial.fields: item 2: 'a' is named twice",
        ),
        (
            MINIMAL + "  format: csv\n  fields: [a]\n  separator: ';;'\n",
            ":7: serial.separator: expected one character such as ',', ';' or a tab, got ';;'",
        ),
        (MINIMAL + "  fields: [a]\n", ":5: serial.fields: only used with format 'csv', but format is 'kv'"),
        (
            MINIMAL + "  format: json\n  header: none\n",
            ":6: serial.header: only used with format 'csv', but format is 'json'",
        ),
        (MINIMAL + "  encoding: klingon\n", ":5: serial.encoding: unknown text encoding 'klingon'"),
        (
            MINIMAL + "  line_ending: crcr\n",
            ":5: serial.line_ending: expected 'auto', 'lf', 'cr', 'crlf', got 'crcr'",
        ),
        (
            MINIMAL + "channels:\n  temperature: {stale_after: 0s}\n",
            ":6: channels.temperature.stale_after: expected a duration greater than zero, got '0s'",
        ),
        (
            MINIMAL + "buffer: {max_bytes: 1000}\n",
            ":5: buffer.max_bytes: expected at least 65536 bytes (64KiB), got 1000",
        ),
        (
            MINIMAL + "buffer: {max_bytes: 5 apples}\n",
            ":5: buffer.max_bytes: expected a size in bytes such as 50MB, 200MiB or 1000000, got '5 apples'",
        ),
        (
            MINIMAL + "collectors: {system: {diskio: 'no'}}\n",
            ":5: collectors.system.diskio: expected true or false, got 'no'",
        ),
        (
            MINIMAL + "collectors: {system: {gpu: false}}\n",
            ":5: collectors.system.gpu: unknown key (expected one of: enabled, cpu, loadavg, memory, "
            "swap, filesystem, diskio, network, boot, process)",
        ),
        (
            MINIMAL + "  parity: X\n",
            ":5: serial.parity: expected one of N, E, O, M, S (or none, even, odd, mark, space), got 'X'",
        ),
        (MINIMAL + "  bytesize: 9\n", ":5: serial.bytesize: expected one of 5, 6, 7, 8, got 9"),
        (MINIMAL + "  stopbits: 3\n", ":5: serial.stopbits: expected one of 1, 1.5, 2, got 3"),
        (
            MINIMAL + "  stale_after: soon\n",
            ":5: serial.stale_after: expected a duration like 30s, 5m, 24h or a number of seconds, "
            "got 'soon'",
        ),
        (
            MINIMAL + "  stale_after: 0s\n",
            ":5: serial.stale_after: expected a duration greater than zero, got '0s'",
        ),
        (
            MINIMAL + "  max_line_bytes: 4\n",
            ":5: serial.max_line_bytes: expected an integer 16-1048576, got 4",
        ),
        (
            MINIMAL + "  max_line_bytes: true\n",
            ":5: serial.max_line_bytes: expected an integer 16-1048576, got true",
        ),
        (
            MINIMAL + "  aliases: {T: 'not a key'}\n",
            ":5: serial.aliases.T: expected a reading key such as temperature, got 'not a key'",
        ),
        (
            MINIMAL + "listen: 9817\n",
            ":5: listen: expected host:port (for example 0.0.0.0:9817 or [::]:9817), got 9817",
        ),
        (MINIMAL + "listen: 0.0.0.0:70000\n", ":5: listen: expected a port 0-65535, got 70000"),
        (
            MINIMAL + "channels:\n  humidity: {scale: 2}\n",
            ":6: channels.humidity.metric: required key is missing",
        ),
        (
            MINIMAL + "channels:\n  humidity: {metric: humidity}\n",
            ":6: channels.humidity.metric: expected a name like machine_<what>_<unit>, got 'humidity'",
        ),
        (
            MINIMAL + "channels:\n  humidity: {metric: machine_info}\n",
            ":6: channels.humidity.metric: machine_info is reserved for the machine's identity",
        ),
        (
            MINIMAL + "channels:\n  temp2: {metric: machine_temperature_celsius}\n",
            ":6: channels.temp2.metric: machine_temperature_celsius is already the metric of channel "
            "'temperature'",
        ),
        (
            MINIMAL + "channels:\n  temperature:\n    scale: ten\n",
            ":7: channels.temperature.scale: expected a number, got 'ten'",
        ),
        (
            MINIMAL + "channels:\n  temperature: {unit: C}\n",
            ":6: channels.temperature.unit: unknown key "
            "(expected one of: metric, scale, offset, help, stale_after)",
        ),
        (
            MINIMAL + "buffer:\n  retention: forever\n",
            ":6: buffer.retention: expected a duration like 30s, 5m, 24h or a number of seconds, "
            "got 'forever'",
        ),
        (
            MINIMAL + "web:\n  bearer_token_file: /nonexistent/token\n",
            ":6: web.bearer_token_file: cannot read /nonexistent/token: No such file or directory",
        ),
        (
            MINIMAL + "web:\n  basic_auth_users: {admin: $2b$12$x}\n",
            ":6: web.basic_auth_users.admin: not a valid bcrypt hash ($2a$/$2b$/$2y$, cost, 53 characters)",
        ),
        (
            MINIMAL + "push: {url: 'https://central:8000/api/ingest'}\n",
            ":5: push.api_key_file: required key is missing (push needs url and api_key_file)",
        ),
        (
            MINIMAL + "push: yes please\n",
            ":5: push: expected a mapping, got 'yes please'",
        ),
        (
            MINIMAL + "push:\n  url: ftp://central/api/ingest\n  api_key_file: key\n",
            ":6: push.url: expected an http:// or https:// URL with a host, got 'ftp://central/api/ingest'",
        ),
        (
            MINIMAL + "push:\n  url: https://central/api/ingest\n  api_key_file: key\n  batch_size: 5000\n",
            ":8: push.batch_size: expected an integer 1-1000, got 5000",
        ),
        (
            MINIMAL + "push:\n  url: http://central/api/ingest\n  api_key_file: key\n  ca_file: ca.pem\n",
            ":8: push.ca_file: only for an https:// url",
        ),
        (
            MINIMAL + "push:\n  url: https://central/api/ingest\n  api_key_file: key\n  evry: 5s\n",
            ":8: push.evry: unknown key (did you mean 'every'?)",
        ),
        (
            MINIMAL + "push:\n  url: https://central/api/ingest\n  api_key_file: key\n  every: 2d\n",
            ":8: push.every: expected at most 1d, got '2d'",
        ),
        ("- machine\n- serial\n", ":1: expected a mapping of settings at the top level, got a list"),
        (
            "machine: {id: a\nserial: {port: COM3}\n",
            ":2: YAML syntax error: expected ',' or '}', but got ':' (while parsing a flow mapping)",
        ),
        (
            "machine: {id: a}\nmachine: {id: b}\n",
            ":2: YAML syntax error: found duplicate key \"machine\" with value \"{'id': 'b'}\" "
            "(original value: \"{'id': 'a'}\") (while constructing a mapping)",
        ),
    ],
)
def test_config_errors_name_file_line_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(tmp_path, text) == expected


def test_a_push_section_resolves_its_files_next_to_the_config(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_text(
        MINIMAL
        + "push:\n  url: https://central:8000/api/ingest\n  api_key_file: secrets/key\n"
        + "  ca_file: /etc/ca.pem\n  every: 5s\n  batch_size: 200\n  timeout: 3s\n  retry_max: 1m\n"
    )
    push = load_config(path).push
    assert push is not None
    assert push.url == "https://central:8000/api/ingest"
    assert push.api_key_file == str(tmp_path / "secrets" / "key")
    assert push.ca_file == "/etc/ca.pem"
    assert (push.every, push.batch_size, push.timeout, push.retry_max) == (5.0, 200, 3.0, 60.0)
    assert load_config(None, {"machine.id": "a", "serial.port": "COM3"}).push is None


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory"


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_bytes(b"machine: {id: \xff}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: the file is not UTF-8 text (byte 14)"


def test_a_windows_notepad_file_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.replace("\n", "\r\n").encode())
    assert load_config(path).serial.port == "COM3"


def test_relative_source_keeps_the_name_the_user_typed(tmp_path: Path) -> None:
    write(tmp_path, "machine: {id: a}\nserial: {port: COM3, baudrate: fast}\n", name="bad.yaml")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ConfigError) as caught:
            load_config("bad.yaml")
    finally:
        os.chdir(cwd)
    assert str(caught.value) == "bad.yaml:2: serial.baudrate: expected a positive integer, got 'fast'"
    assert (caught.value.source, caught.value.line, caught.value.key) == ("bad.yaml", 2, "serial.baudrate")


def test_an_override_under_a_broken_section_reports_the_files_mistake(tmp_path: Path) -> None:
    path = write(tmp_path, "machine: {id: a}\nserial: COM3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"serial.port": "COM4"})
    assert str(caught.value) == f"{path}:2: serial: expected a mapping, got 'COM3'"


# -- formats, poll mode, collectors, buffer cap -------------------------------------------------------


def test_every_format_mode_and_switch_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_text(
        """\
machine: {id: m}
serial:
  port: COM3
  format: csv
  fields: [temperature, null, speed, '-']
  separator: "\\t"
  header: none
  mode: poll
  command: "READ"
  every: 10s
  answer_timeout: 1500ms
  encoding: latin-1
  line_ending: cr
  read_timeout: 200ms
channels:
  pressure: {stale_after: 5m}
buffer: {max_bytes: 200MB}
collectors: {system: {diskio: false, network: false}}
""",
        encoding="utf-8",
    )
    config = load_config(path)
    serial = config.serial
    assert (serial.format, serial.fields, serial.separator, serial.header) == (
        "csv",
        ("temperature", None, "speed", None),
        "\t",
        "none",
    )
    assert (serial.mode, serial.command, serial.every, serial.answer_timeout) == ("poll", "READ", 10.0, 1.5)
    assert serial.command_bytes == b"READ\r"  # the configured line ending is added
    assert (serial.encoding, serial.line_ending, serial.read_timeout) == ("latin-1", "cr", 0.2)
    assert {c.key: c.stale_after for c in config.channels}["pressure"] == 300.0
    assert config.buffer.max_bytes == 200_000_000
    assert not config.collectors.enabled("diskio") and config.collectors.enabled("cpu")
    assert not CollectorsConfig(system=False).enabled("cpu")


def test_a_regex_pattern_reads_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_text(
        "machine: {id: m}\nserial:\n  port: COM3\n  format: regex\n"
        "  pattern: 'T:(?P<temperature>[-\\d.]+)C'\nbuffer: {max_bytes: 1MiB}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.serial.pattern == r"T:(?P<temperature>[-\d.]+)C"
    assert config.buffer.max_bytes == 1024 * 1024


def test_an_unset_answer_timeout_fits_a_short_poll_interval() -> None:
    data = {
        "machine": {"id": "m"},
        "serial": {"port": "COM3", "mode": "poll", "command": "R", "every": "200ms"},
    }
    assert parse_config(data, "test").serial.answer_timeout == 0.2
    data["serial"]["every"] = "10s"
    assert parse_config(data, "test").serial.answer_timeout == 2.0
