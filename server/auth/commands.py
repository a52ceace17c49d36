"""`millwatch user …` and `millwatch token …`: the command-line side of server/auth/store.py.

Passwords are asked twice without echo on a terminal, or read as one line from stdin for scripts
(`printf '%s\\n' "$PASSWORD" | millwatch user add ops --role admin`); never taken as an argument,
where every user of the host could read it in the process list.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import TextIO

from scraper.store import Store
from server.auth.principal import Role
from server.auth.store import AuthStore
from server.errors import AuthError
from server.settings import load_settings


@contextlib.contextmanager
def _auth_store(args: argparse.Namespace) -> Iterator[AuthStore]:
    settings = load_settings(database_url=args.db)
    store = Store(settings.database_url)
    try:
        store.migrate()
        yield AuthStore(store)
    finally:
        store.close()


def read_password(prompt: str, stdin: TextIO | None = None) -> str:
    """A new password: asked twice without echo on a terminal, else the first line of stdin.

    Raises AuthError when the two entries differ or stdin is empty.
    """
    stream = sys.stdin if stdin is None else stdin
    if stream.isatty():
        first = getpass.getpass(f"{prompt}: ")
        second = getpass.getpass(f"{prompt} (again): ")
        if first != second:
            raise AuthError("the two passwords differ")
        return first
    line = stream.readline()
    if not line:
        raise AuthError("no password on stdin (give it as one line)")
    return line.rstrip("\r\n")


def user_add(args: argparse.Namespace) -> int:
    password = read_password(f"password for {args.name}")
    with _auth_store(args) as auth:
        auth.add_user(args.name, Role(args.role), password)
    print(f"user {args.name} added ({args.role})")
    return 0


def user_list(args: argparse.Namespace) -> int:
    with _auth_store(args) as auth:
        users = auth.list_users()
    rows = [(u.name, u.role.value, _when(u.created_at), _when(u.password_changed_at)) for u in users]
    _table(("NAME", "ROLE", "CREATED", "PASSWORD CHANGED"), rows)
    return 0


def user_remove(args: argparse.Namespace) -> int:
    with _auth_store(args) as auth:
        auth.remove_user(args.name)
    print(f"user {args.name} removed; their sessions ended")
    return 0


def user_passwd(args: argparse.Namespace) -> int:
    password = read_password(f"new password for {args.name}")
    with _auth_store(args) as auth:
        auth.set_password(args.name, password)
    print(f"password of {args.name} changed; their sessions ended")
    return 0


def token_create(args: argparse.Namespace) -> int:
    with _auth_store(args) as auth:
        token = auth.create_token(args.name, Role(args.role))
    # The token alone on stdout, for `TOKEN=$(millwatch token create …)`; the advice on stderr.
    print(token)
    print(
        f"token {args.name} ({args.role}) created: store it now, it is not shown again. "
        "Send it as `Authorization: Bearer <token>`.",
        file=sys.stderr,
    )
    return 0


def token_list(args: argparse.Namespace) -> int:
    with _auth_store(args) as auth:
        tokens = auth.list_tokens()
    rows = [(t.name, t.role.value, _when(t.created_at), _when(t.last_used_at)) for t in tokens]
    _table(("NAME", "ROLE", "CREATED", "LAST USED"), rows)
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    with _auth_store(args) as auth:
        auth.revoke_token(args.name)
    print(f"token {args.name} revoked")
    return 0


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
