"""The `/` page: what a technician standing at the machine needs to see, in one self-contained HTML page.

No scripts, no external assets (the machine PC may have no Internet); it refreshes itself every
few seconds. State is written in words as well as colours. Its size is bounded whatever the device
sends: at most `MAX_LISTED_EXTRA_KEYS` keys without a channel are listed, names cut at `KEY_WIDTH`,
the last raw line is shown HTML-escaped and cut (`RAW_LINE_LIMIT` in exporter/readings.py).

The page is a list of sections (`_sections`), each a small function of what it shows, so a new one
(the HTTP side's "last scrape") is one function and one line there.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.buffer import BufferHealth
from exporter.config import ExporterConfig
from exporter.push import PushStatus
from exporter.scrapes import LastScrape
from exporter.serial_reader import ReaderStatus
from millwatch_common.durations import format_duration

REFRESH_SECONDS = 5
MAX_LISTED_EXTRA_KEYS = 20
KEY_WIDTH = 60

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:1.5rem;
color:#1d232a;background:#f6f7f9}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.4rem 0 .4rem}
.sub{color:#55606c;margin:0 0 1rem}
table{border-collapse:collapse;background:#fff;min-width:22rem}
th,td{border:1px solid #d5dae0;padding:.3rem .6rem;text-align:left}th{background:#eef1f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#0b6b2e;font-weight:600}.bad{color:#a4161a;font-weight:600}.dim{color:#6b7580}
.badge{display:inline-block;padding:.15rem .55rem;border-radius:.3rem;border:2px solid}
.badge.ok{border-color:#0b6b2e}.badge.bad{border-color:#a4161a}
a{color:#0b4f8a}
"""


@dataclass(frozen=True)
class BufferSummary:
    path: str
    health: BufferHealth | None  # None when the buffer could not be read
    retention_seconds: float


def render_status_page(
    config: ExporterConfig,
    status: ReaderStatus,
    now: float,
    version: str,
    buffer: BufferSummary,
    *,
    last_scrape: LastScrape | None = None,
    push: PushStatus | None = None,
) -> str:
    """The full HTML document for `/` at time `now`."""
    if status.up(now):
        verdict = '<span class="badge ok">&#10004; Sensor OK</span>'
    elif status.connected:
        verdict = '<span class="badge bad">&#9888; Port open, no fresh readings</span>'
    else:
        verdict = '<span class="badge bad">&#10006; Serial port not open</span>'

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>millwatch exporter: {escape(config.machine.name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(config.machine.name)}</h1>",
        f'<p class="sub">machine id <code>{escape(config.machine.id)}</code> &middot; '
        f"millwatch exporter {escape(version)} &middot; {verdict}</p>",
    ]
    parts += _serial_section(config, status, now)
    parts += ["<h2>Latest readings</h2>", _readings(config, status, now)]
    parts += _errors_section(status, now)
    parts += _buffer_section(buffer, now)
    parts += _scrapes_section(last_scrape, now)
    if push is not None:
        parts += _push_section(push, now)
    parts += [
        f'<p><a href="/metrics">/metrics</a> &middot; <a href="/history?since={int(now) - 3600}">'
        f'/history (last hour)</a> &middot; <a href="/healthz">/healthz</a></p>',
        f'<p class="dim">This page refreshes every {REFRESH_SECONDS} s.</p>',
        "</body></html>",
    ]
    return "\n".join(parts)


def _serial_section(config: ExporterConfig, status: ReaderStatus, now: float) -> list[str]:
    serial = config.serial
    settings = f"{serial.baudrate} baud, {serial.framing}, format {serial.format}, mode {serial.mode}"
    if serial.mode == "poll":
        settings += f" (command {serial.command!r} every {format_duration(serial.every)})"
    raw = status.last_raw_line
    if raw is None:
        raw_html = '<span class="dim">nothing received yet</span>'
    else:
        cut = ' <span class="dim">(cut)</span>' if raw.truncated else ""
        raw_html = (
            f'<code>{escape(raw.text)}</code>{cut} <span class="dim">{escape(_age(raw.time, now))}</span>'
        )
    return [
        "<h2>Serial port</h2><table>",
        _row("Port", f"<code>{escape(status.port)}</code>"),
        _row("Settings", escape(settings)),
        _row(
            "State",
            '<span class="ok">open</span>' if status.connected else '<span class="bad">not open</span>',
        ),
        _row("Last reading", _age(status.last_reading_time, now)),
        _row("Readings", f"{status.readings_total} lines"),
        _row("Last line received", raw_html),
        "</table>",
    ]


def _errors_section(status: ReaderStatus, now: float) -> list[str]:
    parts = ["<h2>Errors</h2><table><tr><th>Reason</th><th>Count</th></tr>"]
    for reason, count in status.errors_total.items():
        css = "num bad" if count else "num"
        parts.append(f'<tr><td>{escape(reason)}</td><td class="{css}">{count}</td></tr>')
    parts.append("</table>")
    if status.last_error is not None:
        error = status.last_error
        parts.append(
            f"<p>Last error ({escape(_age(error.time, now))}): <code>{escape(error.reason)}</code> "
            f"{escape(error.message)}</p>"
        )
    return parts


def _buffer_section(buffer: BufferSummary, now: float) -> list[str]:
    health = buffer.health
    parts = ["<h2>Local buffer</h2><table>", _row("File", f"<code>{escape(buffer.path)}</code>")]
    if health is None:
        parts.append(_row("State", '<span class="bad">cannot be read</span>'))
    else:
        if health.last_error:
            state = f'<span class="bad">writes failing: {escape(health.last_error)}</span>'
            state += " (live values are still served; readings are not kept until this clears)"
        else:
            state = '<span class="ok">writing</span>'
        parts.append(_row("State", state))
        parts.append(_row("Holds", escape(f"{health.rows} readings")))
        size = _bytes(health.size_bytes)
        if health.max_bytes is not None:
            size += f" of at most {_bytes(health.max_bytes)}"
        parts.append(_row("Size", escape(size)))
        oldest = "none" if health.oldest is None else _age(health.oldest, now)
        parts.append(_row("Oldest reading", escape(oldest)))
        if health.evicted_total:
            parts.append(_row("Dropped for size", escape(f"{health.evicted_total} oldest readings")))
        if health.write_errors_total:
            parts.append(_row("Failed writes", f'<span class="bad">{health.write_errors_total}</span>'))
    parts += [_row("Retention", escape(format_duration(buffer.retention_seconds))), "</table>"]
    return parts


def _bytes(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _scrapes_section(scrape: LastScrape | None, now: float) -> list[str]:
    if scrape is None:
        last = "never (since the exporter started)"
    else:
        last = f"{_age(scrape.time, now)} by {scrape.client}"
    return ["<h2>Scrapes</h2><table>", _row("Last scrape of /metrics", escape(last)), "</table>"]


def _push_section(push: PushStatus, now: float) -> list[str]:
    """Push mode: where to, the last acknowledged batch, what waits, and why sends failed."""
    failing = push.last_error is not None and (
        push.last_success_time is None or (push.last_error_time or 0) > push.last_success_time
    )
    state = '<span class="bad">failing</span>' if failing else '<span class="ok">working</span>'
    if push.last_success_time is None and not failing:
        state = '<span class="dim">not sent yet</span>'
    pending = "unreadable" if push.pending is None else f"{push.pending} readings"
    parts = [
        "<h2>Push to the central host</h2><table>",
        _row("URL", f"<code>{escape(push.url)}</code>"),
        _row("State", state),
        _row("Last acknowledged", escape(_age(push.last_success_time, now))),
        _row("Waiting to be sent", escape(pending)),
        _row("Sent", escape(f"{push.batches_total} batches, {push.readings_total} readings")),
        "</table>",
    ]
    errors = [(reason, count) for reason, count in push.errors_total.items() if count]
    if errors:
        parts.append("<table><tr><th>Push error</th><th>Count</th></tr>")
        parts += [f'<tr><td>{escape(r)}</td><td class="num bad">{c}</td></tr>' for r, c in errors]
        parts.append("</table>")
    if push.last_error is not None:
        parts.append(
            f"<p>Last push error ({escape(_age(push.last_error_time, now))}): "
            f"<code>{escape(push.last_error.reason)}</code> {escape(push.last_error.message)}</p>"
        )
    return parts


def _row(label: str, html_value: str) -> str:
    return f"<tr><th>{escape(label)}</th><td>{html_value}</td></tr>"


def _age(then: float | None, now: float) -> str:
    if then is None:
        return "never"
    return f"{format_duration(max(0.0, now - then))} ago"


def _readings(config: ExporterConfig, status: ReaderStatus, now: float) -> str:
    rows = ["<table><tr><th>Reading</th><th>Metric</th><th>Value</th><th>Age</th><th>State</th></tr>"]
    mapped = set()
    for channel in config.channels:
        mapped.add(channel.key)
        reading = status.latest.get(channel.key)
        if reading is None:
            rows.append(
                f"<tr><td>{escape(channel.key)}</td><td><code>{escape(channel.metric)}</code></td>"
                '<td class="num">&ndash;</td><td>never</td><td class="bad">no reading</td></tr>'
            )
            continue
        value, at = reading
        if status.is_fresh(at, now, channel.key):
            state = '<span class="ok">fresh</span>'
        else:
            limit = escape(format_duration(status.stale_after_of(channel.key)))
            state = f'<span class="bad">stale (older than {limit})</span>'
        rows.append(
            f"<tr><td>{escape(channel.key)}</td><td><code>{escape(channel.metric)}</code></td>"
            f'<td class="num">{channel.apply(value):g}</td><td>{escape(_age(at, now))}</td>'
            f"<td>{state}</td></tr>"
        )
    extra = sorted(k for k in status.latest if k not in mapped)
    for key in extra[:MAX_LISTED_EXTRA_KEYS]:
        value, at = status.latest[key]
        rows.append(
            f'<tr><td>{escape(_shorten(key))}</td><td class="dim">no channel configured</td>'
            f'<td class="num">{value:g}</td><td>{escape(_age(at, now))}</td>'
            '<td class="dim">not exported</td></tr>'
        )
    if len(extra) > MAX_LISTED_EXTRA_KEYS:
        rows.append(
            f'<tr><td colspan="5" class="dim">and {len(extra) - MAX_LISTED_EXTRA_KEYS} more keys '
            "without a channel, not listed</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _shorten(key: str) -> str:
    return key if len(key) <= KEY_WIDTH else key[: KEY_WIDTH - 1] + "\u2026"


def escape(text: str) -> str:
    """`html.escape(text)` without importing `html`: its entity table costs 0.5 MB of RSS."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )
