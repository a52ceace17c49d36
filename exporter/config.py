"""`exporter.yaml` → `ExporterConfig`, with every problem reported as `file:line: key.path: message`.

The schema is the "Exporter configuration" of the design brief. Every key is optional except
`machine.id` and `serial.port`; unknown keys are errors so that a typo never silently falls back to
a default. Keys that only make sense together are checked together (`pattern` only with
`format: regex`, `command` only with `mode: poll`, ...), so an impossible combination is an error
before any port opens.

The files the `web:` section names (token, TLS certificate and key, client CA) are read here, while
the key's line is known: a missing, empty or unusable one is a ConfigError before any port opens.
"""

from __future__ import annotations

import codecs
import difflib
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from exporter.errors import ConfigError
from exporter.formats import FORMAT_NAMES
from exporter.passwords import PasswordHash, PasswordHashError, parse_hash
from exporter.tls import TLSFileError, TLSFiles, server_context
from millwatch_common.durations import format_duration as format_seconds
from millwatch_common.durations import parse_duration
from millwatch_common.names import CHANNEL_METRIC, MACHINE_ID
from millwatch_common.names import DEFAULT_EXPORTER_PORT as DEFAULT_PORT
from millwatch_common.push_wire import MAX_READINGS
from millwatch_common.yamltext import YAMLSyntaxError, load_roundtrip

DEFAULT_BUFFER_PATH = "./millwatch-buffer.sqlite"
DEFAULT_ALIASES: Mapping[str, str] = {"T": "temperature", "P": "pressure", "S": "speed", "RPM": "speed"}
SUPPORTED_FORMATS = FORMAT_NAMES
SUPPORTED_MODES = ("stream", "poll")
LINE_ENDINGS: Mapping[str, str] = {"auto": "\r\n", "lf": "\n", "cr": "\r", "crlf": "\r\n"}
"""Accepted `serial.line_ending` values → what is added to a poll command that has no line end."""
CSV_HEADERS = ("auto", "none")
SYSTEM_COLLECTORS = (
    "cpu",
    "loadavg",
    "memory",
    "swap",
    "filesystem",
    "diskio",
    "network",
    "boot",
    "process",
)
"""The system collectors, each switchable under `collectors.system` (see exporter/collectors/)."""
_MIN_BUFFER_BYTES = 64 * 1024
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
COMMAND_LINE = "command line"

# Reading keys as the kv line format accepts them (see exporter.formats.kv).
READING_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_PARITIES = {"N": "N", "E": "E", "O": "O", "M": "M", "S": "S"}
_PARITY_NAMES = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}
_BYTESIZES = (5, 6, 7, 8)
_STOPBITS = (1.0, 1.5, 2.0)
_MIN_LINE_BYTES = 16
_MAX_LINE_BYTES = 1024 * 1024
_MAX_TOKEN_BYTES = 4096
_MAX_CONNECTIONS = 1024
_WEB_KEYS = (
    "bearer_token_file",
    "basic_auth_users",
    "tls_cert_file",
    "tls_key_file",
    "tls_client_ca_file",
    "max_connections",
    "header_read_timeout",
    "idle_timeout",
)

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class ListenAddress:
    """Where the HTTP server binds. Port 0 asks the OS for a free port (see ExporterApp.port)."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class MachineConfig:
    id: str
    name: str


@dataclass(frozen=True)
class SerialConfig:
    """The serial input. `port` is anything `serial.serial_for_url` opens."""

    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1.0
    format: str = "kv"
    mode: str = "stream"
    stale_after: float = 30.0
    max_line_bytes: int = 1024
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ALIASES))
    encoding: str = "utf-8"
    line_ending: str = "auto"
    read_timeout: float = 0.5
    # format csv
    fields: tuple[str | None, ...] = ()
    separator: str = ","
    header: str = "auto"
    # format regex
    pattern: str | None = None
    # mode poll
    command: str | None = None
    every: float = 5.0
    answer_timeout: float = 2.0

    @property
    def port_timeout(self) -> float:
        """One read's wait: `read_timeout`, and in poll mode at most half of `answer_timeout`, so a
        missing answer is noticed on time."""
        if self.mode == "poll":
            return min(self.read_timeout, self.answer_timeout / 2)
        return self.read_timeout

    @property
    def command_bytes(self) -> bytes:
        """The poll command as sent: encoded, with the line ending added when it has none."""
        text = self.command or ""
        if not text.endswith(("\r", "\n")):
            text += LINE_ENDINGS[self.line_ending]
        return text.encode(self.encoding)

    @property
    def framing(self) -> str:
        """The framing in the usual short form, such as `8N1`."""
        stop = "1.5" if self.stopbits == 1.5 else str(int(self.stopbits))
        return f"{self.bytesize}{self.parity}{stop}"


@dataclass(frozen=True)
class ChannelConfig:
    """One reading key exported as one gauge: `value * scale + offset`."""

    key: str
    metric: str
    scale: float = 1.0
    offset: float = 0.0
    help: str = ""
    stale_after: float | None = None
    """Overrides `serial.stale_after` for this channel (a slow sensor read every few minutes)."""

    def apply(self, value: float) -> float:
        return value * self.scale + self.offset


@dataclass(frozen=True)
class BufferConfig:
    path: str = DEFAULT_BUFFER_PATH
    retention: float = 24 * 3600.0
    max_bytes: int | None = None
    """A size cap on the file's data: beyond it the oldest readings go first (counted)."""


@dataclass(frozen=True)
class CollectorsConfig:
    """Which system collectors run: `system` (all of them) and each one by name."""

    system: bool = True
    disabled: frozenset[str] = frozenset()

    def enabled(self, name: str) -> bool:
        return self.system and name not in self.disabled


@dataclass(frozen=True)
class WebConfig:
    """The `web:` section: who may read the exporter, over what, within which bounds.

    `bearer_token` is the token file's content, read when the configuration was loaded; it is left
    out of `repr()` so that it cannot reach a log line by accident.
    """

    bearer_token_file: str | None = None
    bearer_token: bytes | None = field(default=None, repr=False)
    basic_auth_users: Mapping[str, PasswordHash] = field(default_factory=dict, repr=False)
    tls: TLSFiles | None = None
    max_connections: int = 16
    header_read_timeout: float = 10.0
    idle_timeout: float = 120.0

    @property
    def auth_enabled(self) -> bool:
        return self.bearer_token is not None or bool(self.basic_auth_users)


@dataclass(frozen=True)
class PushConfig:
    """Push mode: send the buffered readings to the central host's `POST /api/ingest`.

    `api_key_file` holds the machine key (`millwatch key create`); its content is read when the
    exporter starts and never logged. TLS certificates are verified (against the system's CAs, or
    `ca_file` for a private CA). Failed sends are retried after a delay doubling up to `retry_max`.
    """

    url: str
    api_key_file: str
    every: float = 15.0
    batch_size: int = 500
    ca_file: str | None = None
    timeout: float = 10.0
    retry_max: float = 300.0


PUSH_KEYS = ("url", "api_key_file", "every", "batch_size", "ca_file", "timeout", "retry_max")
MAX_PUSH_SECONDS = 86400.0


DEFAULT_CHANNELS: tuple[ChannelConfig, ...] = (
    ChannelConfig(
        "temperature",
        "machine_temperature_celsius",
        help="Temperature reported by the machine's serial sensor, in degrees Celsius.",
    ),
    ChannelConfig(
        "pressure", "machine_pressure_bar", help="Pressure reported by the machine's serial sensor, in bar."
    ),
    ChannelConfig(
        "speed",
        "machine_speed_rpm",
        help="Speed reported by the machine's serial sensor, in revolutions per minute.",
    ),
)


@dataclass(frozen=True)
class ExporterConfig:
    """A complete, validated exporter configuration. `source` names where it came from."""

    machine: MachineConfig
    serial: SerialConfig
    listen: ListenAddress = field(default_factory=ListenAddress)
    channels: tuple[ChannelConfig, ...] = DEFAULT_CHANNELS
    buffer: BufferConfig = field(default_factory=BufferConfig)
    web: WebConfig = field(default_factory=WebConfig)
    push: PushConfig | None = None
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig)
    source: str = "<code>"


def load_config(
    path: str | os.PathLike[str] | None, overrides: Mapping[str, object] | None = None
) -> ExporterConfig:
    """Read and validate an exporter.yaml file, then apply `overrides`.

    `overrides` maps dotted key paths (`listen`, `serial.port`, `machine.id`, `buffer.path`, ...)
    to values that replace the file's; their problems are reported as coming from the command line.
    `path=None` means no file: the configuration is the overrides on top of the defaults.
    A relative `buffer.path` from the file (or its default) is taken relative to the file's folder,
    so that a service started from another working directory still finds its buffer.

    Raises ConfigError (one line: `file:line: key.path: message`) for an unreadable file, a YAML
    syntax error or any invalid value.
    """
    if path is None:
        source = COMMAND_LINE
        data: Any = {}
        base_dir: str | None = None
    else:
        source = os.fspath(path)
        data = _read_yaml(source)
        if data is None:  # an empty file: every default
            data = {}
        base_dir = os.path.dirname(os.path.abspath(source))
    overridden = _apply_overrides(data, overrides or {})
    return _Document(data, source, overridden).build(base_dir)


def parse_config(data: Mapping[str, Any], source: str) -> ExporterConfig:
    """Validate configuration `data` (as exporter.yaml would hold it) built in code.

    `source` names the origin in error messages. When `data` comes from ruamel.yaml's round-trip
    loader the errors carry line numbers too. Relative paths stay relative to the working directory.
    Raises ConfigError.
    """
    return _Document(data, source, frozenset()).build(None)


def _read_yaml(source: str) -> Any:
    try:
        with open(source, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", source=source) from exc
    try:
        text = raw.decode("utf-8-sig")  # Notepad on the machine PCs may write a BOM
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the file is not UTF-8 text (byte {exc.start})", source=source) from exc
    try:
        return load_roundtrip(text)
    except YAMLSyntaxError as exc:
        raise ConfigError(exc.message, source=source, line=exc.line) from exc


def _apply_overrides(data: Any, overrides: Mapping[str, object]) -> frozenset[KeyPath]:
    """Write `overrides` into `data`; returns the key paths written.

    An override under a section that is not a mapping (`serial: COM3`) is not applied: validation
    then reports the file's own mistake, with its line.
    """
    applied: set[KeyPath] = set()
    for dotted, value in overrides.items():
        path = tuple(dotted.split("."))
        node = data
        for key in path[:-1]:
            if not isinstance(node, dict):
                break
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
        if isinstance(node, dict):
            node[path[-1]] = value
            applied.add(path)
    return frozenset(applied)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _show(value: object) -> str:
    """A value as a message quotes it: short, one line, YAML-ish for null and booleans."""
    if value is None:
        return "null"
    if isinstance(value, bool) or type(value).__name__ == "ScalarBoolean":
        return "true" if value else "false"
    if isinstance(value, str):
        text = str(value)
        return repr(text if len(text) <= 60 else text[:57] + "...")
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "ScalarBoolean"


class _Document:
    """One configuration being validated: knows where each key path was written."""

    def __init__(self, root: Any, source: str, overridden: frozenset[KeyPath]) -> None:
        self.root = {} if root is None else root
        self.source = source
        self.overridden = overridden

    # -- locating problems -------------------------------------------------------------------------

    def error(self, path: KeyPath, message: str, *, at_key: bool = False) -> ConfigError:
        key = ".".join(path) if path else None
        if any(path[: len(o)] == o for o in self.overridden):
            return ConfigError(message, source=COMMAND_LINE, key=key)
        return ConfigError(message, source=self.source, line=self._line(path, at_key), key=key)

    def _line(self, path: KeyPath, at_key: bool) -> int | None:
        node = self.root
        key_line: int | None = None
        value_line: int | None = None
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return key_line  # a missing key: point at its parent
            lc = getattr(node, "lc", None)
            if lc is None:
                return None
            try:
                key_line = lc.key(key)[0] + 1
                value_line = lc.value(key)[0] + 1
            except (KeyError, TypeError, AttributeError):
                return key_line
            node = node[key]
        return key_line if at_key else value_line

    # -- typed readers -----------------------------------------------------------------------------

    def mapping(self, value: Any, path: KeyPath, allowed: Iterable[str]) -> Mapping[str, Any]:
        """`value` as a mapping (null → empty) whose keys are all in `allowed`."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(path, f"expected a mapping, got {_show(value)}")
        allowed = tuple(allowed)
        for key in value:
            if not isinstance(key, str):
                raise self.error(path, f"keys must be text, got {_show(key)}")
            if key not in allowed:
                raise self.error(path + (key,), _unknown_key_message(key, allowed), at_key=True)
        return value

    def text(
        self, value: Any, path: KeyPath, *, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(path, f"expected {what or 'a non-empty text'}, got {_show(value)}")
        text = str(value)
        if pattern is not None and not pattern.match(text):
            raise self.error(path, f"expected {what or pattern.pattern}, got {_show(value)}")
        return text

    def integer(
        self, value: Any, path: KeyPath, *, low: int = 1, high: int | None = None, what: str = ""
    ) -> int:
        description = what or (
            "a positive integer" if low == 1 and high is None else f"an integer {low}-{high}"
        )
        if _is_bool(value) or not isinstance(value, int):
            raise self.error(path, f"expected {description}, got {_show(value)}")
        number = int(value)
        if number < low or (high is not None and number > high):
            raise self.error(path, f"expected {description}, got {number}")
        return number

    def number(self, value: Any, path: KeyPath) -> float:
        if _is_bool(value) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise self.error(path, f"expected a number, got {_show(value)}")
        return float(value)

    def duration(self, value: Any, path: KeyPath) -> float:
        try:
            seconds = parse_duration(value if not isinstance(value, str) else str(value))
        except ValueError as exc:
            raise self.error(path, str(exc)) from None
        if seconds <= 0:
            raise self.error(path, f"expected a duration greater than zero, got {_show(value)}")
        return seconds

    def choice(self, value: Any, path: KeyPath, supported: tuple[str, ...], planned: tuple[str, ...]) -> str:
        name = path[-1]
        if isinstance(value, str) and value in supported:
            return str(value)
        only = ", ".join(repr(s) for s in supported)
        if isinstance(value, str) and value in planned:
            raise self.error(path, f"{name} {value!r} is not supported yet; only {only} is implemented")
        raise self.error(path, f"expected {only}, got {_show(value)}")

    # -- the schema --------------------------------------------------------------------------------

    def build(self, base_dir: str | None) -> ExporterConfig:
        if not isinstance(self.root, Mapping):
            raise ConfigError(
                f"expected a mapping of settings at the top level, got {_show(self.root)}",
                source=self.source,
                line=1,
            )
        top = self.mapping(
            self.root,
            (),
            ("machine", "listen", "serial", "channels", "buffer", "collectors", "web", "push"),
        )
        machine = self._machine(top)
        serial = self._serial(top)
        listen = self._listen(top)
        channels = self._channels(top)
        buffer = self._buffer(top, base_dir)
        web = self._web(top, base_dir)
        push = self._push(top, base_dir)
        collectors = self._collectors(top)
        return ExporterConfig(
            machine=machine,
            serial=serial,
            listen=listen,
            channels=channels,
            buffer=buffer,
            web=web,
            push=push,
            collectors=collectors,
            source=self.source,
        )

    def _push(self, top: Mapping[str, Any], base_dir: str | None) -> PushConfig | None:
        path: KeyPath = ("push",)
        value = top.get("push")
        if value is None or (isinstance(value, Mapping) and len(value) == 0):
            return None
        section = self.mapping(value, path, PUSH_KEYS)
        for key in ("url", "api_key_file"):
            if section.get(key) is None:
                raise self.error(path + (key,), "required key is missing (push needs url and api_key_file)")
        url = self.text(section["url"], path + ("url",), what="a URL such as https://central:8000/api/ingest")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.error(
                path + ("url",), f"expected an http:// or https:// URL with a host, got {_show(url)}"
            )
        if "@" in parts.netloc:
            raise self.error(
                path + ("url",), "must not contain a user or password (the key goes in api_key_file)"
            )
        values: dict[str, Any] = {
            "url": url,
            "api_key_file": self._file(section["api_key_file"], path + ("api_key_file",), base_dir),
        }
        if section.get("ca_file") is not None:
            values["ca_file"] = self._file(section["ca_file"], path + ("ca_file",), base_dir)
            if parts.scheme != "https":
                raise self.error(path + ("ca_file",), "only for an https:// url")
        for key in ("every", "timeout", "retry_max"):
            if section.get(key) is not None:
                seconds = self.duration(section[key], path + (key,))
                if seconds > MAX_PUSH_SECONDS:
                    raise self.error(path + (key,), f"expected at most 1d, got {_show(section[key])}")
                values[key] = seconds
        if section.get("batch_size") is not None:
            values["batch_size"] = self.integer(
                section["batch_size"], path + ("batch_size",), low=1, high=MAX_READINGS
            )
        return PushConfig(**values)

    def _file(self, value: Any, path: KeyPath, base_dir: str | None) -> str:
        """A file path; a relative one from the file is taken relative to the file's folder."""
        file_path = self.text(value, path, what="a file path")
        if base_dir is not None and path not in self.overridden and not os.path.isabs(file_path):
            file_path = os.path.normpath(os.path.join(base_dir, file_path))
        return file_path

    def _machine(self, top: Mapping[str, Any]) -> MachineConfig:
        section = self.mapping(top.get("machine"), ("machine",), ("id", "name"))
        if section.get("id") is None:
            raise self.error(("machine", "id"), "required key is missing")
        machine_id = self.text(
            section["id"],
            ("machine", "id"),
            pattern=MACHINE_ID,
            what="an id of lowercase letters, digits, '_' or '-'",
        )
        name = machine_id
        if section.get("name") is not None:
            name = self.text(section["name"], ("machine", "name"))
        return MachineConfig(id=machine_id, name=name)

    def _listen(self, top: Mapping[str, Any]) -> ListenAddress:
        value = top.get("listen")
        if value is None:
            return ListenAddress()
        what = "host:port (for example 0.0.0.0:9817 or [::]:9817)"
        if not isinstance(value, str):
            raise self.error(("listen",), f"expected {what}, got {_show(value)}")
        match = re.match(r"^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s]+)):(\d{1,5})$", value.strip())
        if match is None:
            raise self.error(("listen",), f"expected {what}, got {_show(value)}")
        port = int(match.group(3))
        if port > 65535:
            raise self.error(("listen",), f"expected a port 0-65535, got {port}")
        return ListenAddress(host=match.group(1) or match.group(2), port=port)

    def _serial(self, top: Mapping[str, Any]) -> SerialConfig:
        path: KeyPath = ("serial",)
        # Keys that belong to one format or one mode, and which.
        format_keys = {"fields": "csv", "separator": "csv", "header": "csv", "pattern": "regex"}
        mode_keys = ("command", "every", "answer_timeout")
        known = (
            "port",
            "baudrate",
            "bytesize",
            "parity",
            "stopbits",
            "format",
            "mode",
            "stale_after",
            "max_line_bytes",
            "aliases",
            "encoding",
            "line_ending",
            "read_timeout",
        )
        section = self.mapping(top.get("serial"), path, known + tuple(format_keys) + mode_keys)
        if section.get("port") is None:
            raise self.error(path + ("port",), "required key is missing")
        port = self.text(section["port"], path + ("port",), what="a serial port such as COM3 or /dev/ttyUSB0")
        result = SerialConfig(port=port)
        values: dict[str, Any] = {}
        if section.get("baudrate") is not None:
            values["baudrate"] = self.integer(section["baudrate"], path + ("baudrate",))
        if section.get("bytesize") is not None:
            value = section["bytesize"]
            if _is_bool(value) or value not in _BYTESIZES:
                raise self.error(path + ("bytesize",), f"expected one of 5, 6, 7, 8, got {_show(value)}")
            values["bytesize"] = int(value)
        if section.get("parity") is not None:
            values["parity"] = self._parity(section["parity"], path + ("parity",))
        if section.get("stopbits") is not None:
            value = section["stopbits"]
            if _is_bool(value) or not isinstance(value, (int, float)) or float(value) not in _STOPBITS:
                raise self.error(path + ("stopbits",), f"expected one of 1, 1.5, 2, got {_show(value)}")
            values["stopbits"] = float(value)
        line_format = result.format
        if section.get("format") is not None:
            line_format = values["format"] = self.choice(
                section["format"], path + ("format",), SUPPORTED_FORMATS, ()
            )
        mode = result.mode
        if section.get("mode") is not None:
            mode = values["mode"] = self.choice(section["mode"], path + ("mode",), SUPPORTED_MODES, ())
        if section.get("stale_after") is not None:
            values["stale_after"] = self.duration(section["stale_after"], path + ("stale_after",))
        if section.get("max_line_bytes") is not None:
            values["max_line_bytes"] = self.integer(
                section["max_line_bytes"],
                path + ("max_line_bytes",),
                low=_MIN_LINE_BYTES,
                high=_MAX_LINE_BYTES,
            )
        values["aliases"] = self._aliases(section.get("aliases"), path + ("aliases",))
        if section.get("encoding") is not None:
            values["encoding"] = self._encoding(section["encoding"], path + ("encoding",))
        if section.get("line_ending") is not None:
            values["line_ending"] = self.choice(
                section["line_ending"], path + ("line_ending",), tuple(LINE_ENDINGS), ()
            )
        if section.get("read_timeout") is not None:
            values["read_timeout"] = self.duration(section["read_timeout"], path + ("read_timeout",))
            if values["read_timeout"] > 10:
                raise self.error(path + ("read_timeout",), "expected at most 10s (stop() waits for a read)")

        for key, owner in format_keys.items():
            if key in section and line_format != owner:
                raise self.error(
                    path + (key,),
                    f"only used with format {owner!r}, but format is {line_format!r}",
                    at_key=True,
                )
        for key in mode_keys:
            if key in section and mode != "poll":
                raise self.error(
                    path + (key,), f"only used with mode 'poll', but mode is {mode!r}", at_key=True
                )
        if line_format == "csv":
            values.update(self._csv(section, path))
        if line_format == "regex":
            values["pattern"] = self._pattern(section.get("pattern"), path + ("pattern",))
        if mode == "poll":
            values.update(self._poll(section, path, values.get("encoding", result.encoding)))
        return replace(result, **values)

    def _encoding(self, value: Any, path: KeyPath) -> str:
        name = self.text(value, path, what="a text encoding such as utf-8, ascii or latin-1")
        try:
            codecs.lookup(name)
        except LookupError:
            raise self.error(path, f"unknown text encoding {_show(value)}") from None
        if codecs.lookup(name).name.startswith(("utf-16", "utf-32")):
            raise self.error(path, "line-based input needs a byte-oriented encoding (not UTF-16/32)")
        return name

    def _csv(self, section: Mapping[str, Any], path: KeyPath) -> dict[str, Any]:
        values: dict[str, Any] = {}
        where = path + ("fields",)
        fields = section.get("fields")
        if fields is None:
            raise self.error(where, "required with format 'csv': the column names in order")
        if not isinstance(fields, (list, tuple)) or not fields:
            raise self.error(where, f"expected a list of column names, got {_show(fields)}")
        names: list[str | None] = []
        for index, item in enumerate(fields):
            if item is None or item == "-":
                names.append(None)  # a column read past
                continue
            if not isinstance(item, str) or not READING_KEY.match(item):
                raise self.error(
                    where,
                    f"item {index + 1}: expected a reading key of letters, digits, '_', '.' or '-' "
                    f"(or null to skip the column), got {_show(item)}",
                )
            if str(item) in names:
                raise self.error(where, f"item {index + 1}: {str(item)!r} is named twice")
            names.append(str(item))
        if all(name is None for name in names):
            raise self.error(where, "every column is skipped: name at least one")
        values["fields"] = tuple(names)
        if section.get("separator") is not None:
            separator = section["separator"]
            if not isinstance(separator, str) or len(separator) != 1 or separator in '"\r\n':
                raise self.error(
                    path + ("separator",),
                    f"expected one character such as ',', ';' or a tab, got {_show(separator)}",
                )
            values["separator"] = str(separator)
        if section.get("header") is not None:
            values["header"] = self.choice(section["header"], path + ("header",), CSV_HEADERS, ())
        return values

    def _pattern(self, value: Any, path: KeyPath) -> str:
        if value is None:
            raise self.error(path, "required with format 'regex': a pattern with named groups")
        text = self.text(value, path, what="a regular expression with named groups")
        try:
            compiled = re.compile(text)
        except re.error as exc:
            raise self.error(path, f"not a valid regular expression: {exc}") from None
        if not compiled.groupindex:
            raise self.error(
                path, "the pattern has no named group: name each reading, as in (?P<temperature>[-\\d.]+)"
            )
        for name in compiled.groupindex:
            if not READING_KEY.match(name):
                raise self.error(path, f"group name {name!r} is not a reading key")
        return text

    def _poll(self, section: Mapping[str, Any], path: KeyPath, encoding: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if section.get("command") is None:
            raise self.error(path + ("command",), "required with mode 'poll': what to send to the sensor")
        command = section["command"]
        if not isinstance(command, str) or not command:
            raise self.error(path + ("command",), f"expected a text to send, got {_show(command)}")
        try:
            str(command).encode(encoding)
        except UnicodeEncodeError:
            raise self.error(path + ("command",), f"cannot be written in encoding {encoding!r}") from None
        if len(str(command).encode(encoding)) > 256:
            raise self.error(path + ("command",), "longer than 256 bytes")
        values["command"] = str(command)
        every = SerialConfig.every
        if section.get("every") is not None:
            every = values["every"] = self.duration(section["every"], path + ("every",))
        # Unset, the answer timeout is the default or `every`, whichever is shorter.
        answer = values["answer_timeout"] = min(SerialConfig.answer_timeout, every)
        if section.get("answer_timeout") is not None:
            answer = values["answer_timeout"] = self.duration(
                section["answer_timeout"], path + ("answer_timeout",)
            )
        if answer > every:
            raise self.error(
                path + ("answer_timeout",),
                f"answer_timeout ({format_seconds(answer)}) must not be longer than every "
                f"({format_seconds(every)}): the next command would be sent while waiting",
            )
        return values

    def _parity(self, value: Any, path: KeyPath) -> str:
        if isinstance(value, str):
            text = str(value)
            if text in _PARITIES:
                return _PARITIES[text]
            if text.lower() in _PARITY_NAMES:
                return _PARITY_NAMES[text.lower()]
        raise self.error(
            path, f"expected one of N, E, O, M, S (or none, even, odd, mark, space), got {_show(value)}"
        )

    def _aliases(self, value: Any, path: KeyPath) -> dict[str, str]:
        aliases = dict(DEFAULT_ALIASES)
        if value is None:
            return aliases
        if not isinstance(value, Mapping):
            raise self.error(path, f"expected a mapping of line key to reading key, got {_show(value)}")
        for key, target in value.items():
            if not isinstance(key, str) or not READING_KEY.match(key):
                raise self.error(
                    path, f"expected a line key of letters, digits, '_', '.' or '-', got {_show(key)}"
                )
            if target is None:
                aliases.pop(str(key), None)  # null removes a default alias
                continue
            aliases[str(key)] = self.text(
                target, path + (str(key),), pattern=READING_KEY, what="a reading key such as temperature"
            )
        return aliases

    def _channels(self, top: Mapping[str, Any]) -> tuple[ChannelConfig, ...]:
        path: KeyPath = ("channels",)
        value = top.get("channels")
        channels = {c.key: c for c in DEFAULT_CHANNELS}
        if value is None:
            return tuple(channels.values())
        if not isinstance(value, Mapping):
            raise self.error(path, f"expected a mapping of reading key to channel, got {_show(value)}")
        for key, spec in value.items():
            if not isinstance(key, str) or not READING_KEY.match(key):
                raise self.error(
                    path, f"expected a reading key of letters, digits, '_', '.' or '-', got {_show(key)}"
                )
            key = str(key)
            where = path + (key,)
            if spec is None:
                channels.pop(key, None)  # null switches a default channel off
                continue
            fields = self.mapping(spec, where, ("metric", "scale", "offset", "help", "stale_after"))
            default = channels.get(key) or next((c for c in DEFAULT_CHANNELS if c.key == key), None)
            if fields.get("metric") is None:
                if default is None:
                    raise self.error(where + ("metric",), "required key is missing")
                metric = default.metric
            else:
                metric = self.text(
                    fields["metric"],
                    where + ("metric",),
                    pattern=CHANNEL_METRIC,
                    what="a name like machine_<what>_<unit>",
                )
                if metric == "machine_info":
                    raise self.error(
                        where + ("metric",), "machine_info is reserved for the machine's identity"
                    )
            scale = 1.0 if fields.get("scale") is None else self.number(fields["scale"], where + ("scale",))
            offset = (
                0.0 if fields.get("offset") is None else self.number(fields["offset"], where + ("offset",))
            )
            if fields.get("help") is not None:
                help_text = _one_line(self.text(fields["help"], where + ("help",)))
            elif default is not None and default.metric == metric:
                help_text = default.help
            else:
                help_text = f"Serial sensor channel '{key}'."
            stale_after = None
            if fields.get("stale_after") is not None:
                stale_after = self.duration(fields["stale_after"], where + ("stale_after",))
            channels[key] = ChannelConfig(
                key=key, metric=metric, scale=scale, offset=offset, help=help_text, stale_after=stale_after
            )
        seen: dict[str, str] = {}
        for channel in channels.values():
            if channel.metric in seen:
                raise self.error(
                    path + (channel.key, "metric"),
                    f"{channel.metric} is already the metric of channel {seen[channel.metric]!r}",
                )
            seen[channel.metric] = channel.key
        return tuple(channels.values())

    def _buffer(self, top: Mapping[str, Any], base_dir: str | None) -> BufferConfig:
        path: KeyPath = ("buffer",)
        section = self.mapping(top.get("buffer"), path, ("path", "retention", "max_bytes"))
        file_path = DEFAULT_BUFFER_PATH
        if section.get("path") is not None:
            file_path = self.text(section["path"], path + ("path",), what="a file path")
        from_command_line = path + ("path",) in self.overridden
        if base_dir is not None and not from_command_line and not os.path.isabs(file_path):
            file_path = os.path.normpath(os.path.join(base_dir, file_path))
        retention = BufferConfig().retention
        if section.get("retention") is not None:
            retention = self.duration(section["retention"], path + ("retention",))
        max_bytes = None
        if section.get("max_bytes") is not None:
            max_bytes = self._size(section["max_bytes"], path + ("max_bytes",))
        return BufferConfig(path=file_path, retention=retention, max_bytes=max_bytes)

    def _size(self, value: Any, path: KeyPath) -> int:
        what = "a size in bytes such as 50MB, 200MiB or 1000000"
        if _is_bool(value):
            raise self.error(path, f"expected {what}, got {_show(value)}")
        if isinstance(value, int):
            size = int(value)
        elif isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
            if match is None or match.group(2).lower() not in _SIZE_UNITS:
                raise self.error(path, f"expected {what}, got {_show(value)}")
            size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
        else:
            raise self.error(path, f"expected {what}, got {_show(value)}")
        if size < _MIN_BUFFER_BYTES:
            raise self.error(path, f"expected at least {_MIN_BUFFER_BYTES} bytes (64KiB), got {size}")
        return size

    def _collectors(self, top: Mapping[str, Any]) -> CollectorsConfig:
        path: KeyPath = ("collectors",)
        section = self.mapping(top.get("collectors"), path, ("system",))
        system = self.mapping(section.get("system"), path + ("system",), ("enabled",) + SYSTEM_COLLECTORS)
        flags: dict[str, bool] = {}
        for key, value in system.items():
            if value is None:
                continue
            if not _is_bool(value):
                raise self.error(path + ("system", str(key)), f"expected true or false, got {_show(value)}")
            flags[str(key)] = bool(value)
        return CollectorsConfig(
            system=flags.get("enabled", True),
            disabled=frozenset(name for name in SYSTEM_COLLECTORS if flags.get(name) is False),
        )

    def _web(self, top: Mapping[str, Any], base_dir: str | None) -> WebConfig:
        path: KeyPath = ("web",)
        section = self.mapping(top.get("web"), path, _WEB_KEYS)
        values: dict[str, Any] = {}

        def file_path(key: str) -> str | None:
            if section.get(key) is None or section.get(key) == "":  # "" as null, as the example file had it
                return None
            name = self.text(section[key], path + (key,), what="a file path")
            if base_dir is not None and not os.path.isabs(name):
                name = os.path.normpath(os.path.join(base_dir, name))
            return name

        token_file = file_path("bearer_token_file")
        if token_file is not None:
            values["bearer_token_file"] = token_file
            values["bearer_token"] = self._token(token_file, path + ("bearer_token_file",))
        values["basic_auth_users"] = self._users(
            section.get("basic_auth_users"), path + ("basic_auth_users",)
        )
        cert, key, client_ca = (file_path(k) for k in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"))
        if (cert is None) != (key is None):
            missing = "tls_key_file" if key is None else "tls_cert_file"
            raise self.error(
                path + (missing,), "tls_cert_file and tls_key_file go together: this one is missing"
            )
        if client_ca is not None and cert is None:
            raise self.error(
                path + ("tls_client_ca_file",),
                "needs tls_cert_file and tls_key_file (mutual TLS is TLS first)",
            )
        if cert is not None and key is not None:
            files = TLSFiles(cert, key, client_ca)
            try:
                server_context(files)  # the same call the server makes at start: fail here, with the line
            except TLSFileError as exc:
                raise self.error(path + (f"tls_{exc.field}",), exc.message) from None
            values["tls"] = files
        if section.get("max_connections") is not None:
            values["max_connections"] = self.integer(
                section["max_connections"], path + ("max_connections",), low=1, high=_MAX_CONNECTIONS
            )
        for name in ("header_read_timeout", "idle_timeout"):
            if section.get(name) is not None:
                values[name] = self.duration(section[name], path + (name,))
        return WebConfig(**values)

    def _token(self, file_name: str, path: KeyPath) -> bytes:
        """The token file's content (surrounding whitespace removed); never quoted in an error."""
        try:
            with open(file_name, "rb") as handle:
                raw = handle.read(_MAX_TOKEN_BYTES + 1)
        except OSError as exc:
            raise self.error(path, f"cannot read {file_name}: {exc.strerror or exc}") from None
        token = raw.strip()
        if not token:
            raise self.error(path, f"{file_name} is empty")
        if len(raw) > _MAX_TOKEN_BYTES:
            raise self.error(path, f"{file_name} is longer than {_MAX_TOKEN_BYTES} bytes")
        if any(byte < 0x21 or byte > 0x7E for byte in token):
            raise self.error(path, f"{file_name} must hold one token of printable ASCII without spaces")
        return token

    def _users(self, value: Any, path: KeyPath) -> dict[str, PasswordHash]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(path, f"expected a mapping of user name to password hash, got {_show(value)}")
        users: dict[str, PasswordHash] = {}
        for user, hashed in value.items():
            if not isinstance(user, str) or not user or ":" in user or len(user) > 256:
                raise self.error(path, f"expected a user name without ':', got {_show(user)}")
            where = path + (str(user),)
            if not isinstance(hashed, str):
                raise self.error(where, "expected a password hash (text), got " + _show(hashed))
            try:
                users[str(user)] = parse_hash(str(hashed))
            except PasswordHashError as exc:
                raise self.error(where, str(exc)) from None
        return users


def _unknown_key_message(key: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.7)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return "unknown key (expected one of: " + ", ".join(allowed) + ")"
