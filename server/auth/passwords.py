"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Longer passwords are refused before hashing: argon2 hashes any length, but a megabyte-long
# "password" sent to the login route would cost CPU for nothing.
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()
# Verified against when the user does not exist, so that a login for an unknown name takes as long
# as one for a known name and the answer time does not tell which names exist.
_DUMMY_HASH = _hasher.hash("millwatch: no such user")


def check_new_password(password: str) -> str | None:
    """Why `password` cannot be set (a sentence), or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password must have at most {MAX_PASSWORD_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    """The argon2id hash of `password` (salted; the text holds the parameters)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; None (no such user) costs the same and says no."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (rehash at the next login)."""
    return _hasher.check_needs_rehash(password_hash)
