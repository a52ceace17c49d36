"""Who is asking: a user (page session), an API token, or nobody with anonymous read switched on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Role(str, Enum):
    VIEWER = "viewer"
    ADMIN = "admin"


#: Login and token names: a letter or digit, then letters, digits and `_ . @ -`, 64 at most.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a user or token name, or None."""
    if NAME_PATTERN.match(name) is None:
        return "names are 1 to 64 letters, digits or _ . @ -, starting with a letter or digit"
    return None


@dataclass(frozen=True)
class Principal:
    """The authenticated party of one request.

    `kind` is "session" (a logged-in user of the page), "token" (an API token) or "anonymous"
    (nobody, allowed to read because MILLWATCH_ANONYMOUS_READ is on). `csrf_hash` is set for a
    session only: unsafe requests made with its cookie must carry the matching CSRF token.
    """

    kind: str
    name: str | None
    role: Role
    csrf_hash: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
