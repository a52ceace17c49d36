"""A logging filter that masks credentials in every log line, whoever writes it.

Our own code never logs a secret. Libraries may: the WebSocket protocol library logs every
handshake header at debug level (`< authorization: Bearer …`, `< cookie: …`). The filter sits on
the log handlers, so it sees every record that is written, from any logger. Standard library only:
the exporter-only install configures logging with it too.
"""

from __future__ import annotations

import logging
import re

MASK = "<redacted>"

_PATTERNS = (
    # Header lines as HTTP libraries log them: the whole value goes.
    re.compile(
        r"(?im)^([<>]?\s*(?:authorization|proxy-authorization|cookie|set-cookie|x-csrf-token)\s*:\s*).*$"
    ),
    # Header pairs logged as Python tuples or dicts: (b'authorization', b'Bearer …').
    re.compile(r"""(?i)(['"](?:authorization|cookie|set-cookie|x-csrf-token)['"]\s*[,:]\s*b?['"])[^'"]*"""),
    # Our API tokens and push mode's machine keys, wherever they turn up.
    re.compile(r"(mwt_|mwk_)[A-Za-z0-9_-]+"),
    # Our session cookie, wherever it turns up.
    re.compile(r"(millwatch_session=)[^;\s'\"]+"),
)


def redact(text: str) -> str:
    """`text` with every credential it visibly holds replaced by <redacted>."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message with `redact`; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
