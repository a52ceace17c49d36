"""Secrets for scraping an exporter, read at scrape time from files or environment variables.

Reading them per scrape means a rotated token file takes effect on the next scrape without a
reload, and that a secret never sits in the inventory, a view or a log line. Errors name the file
or variable, never the secret.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from scraper.errors import CredentialsUnavailable
from scraper.inventory import Auth


def auth_headers(auth: Auth | None) -> dict[str, str]:
    """The `Authorization` header for `auth` ({} when None).

    Raises `CredentialsUnavailable` when the file cannot be read, the variable is unset, or the
    secret is empty or contains control characters.
    """
    if auth is None:
        return {}
    if auth.bearer_token_file is not None:
        token = _read_file("bearer_token_file", auth.bearer_token_file)
        return {"Authorization": f"Bearer {token}"}
    if auth.bearer_token_env is not None:
        token = _read_env("bearer_token_env", auth.bearer_token_env)
        return {"Authorization": f"Bearer {token}"}
    if auth.basic is not None:
        basic = auth.basic
        if basic.password_file is not None:
            password = _read_file("basic.password_file", basic.password_file)
        elif basic.password_env is not None:
            password = _read_env("basic.password_env", basic.password_env)
        else:  # the inventory guarantees one of the two
            raise CredentialsUnavailable("basic auth has no password source")
        pair = f"{basic.username}:{password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return {}


def _read_file(key: str, path: str) -> str:
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not readable text"
        raise CredentialsUnavailable(f"cannot read {key} {path}: {reason}") from e
    return _checked(secret, f"{key} {path}")


def _read_env(key: str, name: str) -> str:
    secret = os.environ.get(name)
    if secret is None:
        raise CredentialsUnavailable(f"{key}: environment variable {name} is not set")
    return _checked(secret.strip(), f"{key} {name}")


def _checked(secret: str, where: str) -> str:
    if not secret:
        raise CredentialsUnavailable(f"{where} is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret):
        raise CredentialsUnavailable(f"{where} contains control characters")
    return secret
