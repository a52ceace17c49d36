"""Who may read the exporter: a bearer token and/or basic-auth users with hashed passwords.

`Authenticator.check(authorization_header)` answers yes or no; the HTTP layer answers 401 with
`WWW-Authenticate` and nothing else. Comparisons are constant-time. Checking a password hash costs
tens of milliseconds by design, so a verified (user, password) pair is remembered for a short
while under an HMAC of both made with a key that lives only in this process: a scraper sending the
same credentials every 15 s pays the hash once a minute, and memory never holds a password. Hash
checks run one at a time, so a burst of wrong passwords costs at most one core.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter.passwords import PasswordHash, hash_password, parse_hash

REALM = "millwatch-exporter"
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 64
_MAX_AUTHORIZATION_BYTES = 4096


@dataclass(frozen=True)
class Credentials:
    """What the `web:` section allows: a token (bytes, never logged) and user → hash."""

    bearer_token: bytes | None
    users: Mapping[str, PasswordHash]

    @property
    def enabled(self) -> bool:
        return self.bearer_token is not None or bool(self.users)

    def __repr__(self) -> str:  # the token must never reach a log line through a repr
        token = "set" if self.bearer_token is not None else "none"
        return f"Credentials(bearer_token=<{token}>, users={sorted(self.users)})"


class Authenticator:
    """Checks an `Authorization` header against the configured credentials. Thread-safe."""

    def __init__(self, credentials: Credentials, clock: Callable[[], float] = time.monotonic) -> None:
        self._credentials = credentials
        self._clock = clock
        self._key = os.urandom(32)
        self._cache: OrderedDict[bytes, tuple[bool, float]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._hash_lock = threading.Lock()
        # Unknown users are checked against a hash too, so the answer's timing does not tell
        # which user names exist.
        self._decoy = parse_hash(hash_password(os.urandom(16), "scrypt")) if credentials.users else None

    @property
    def enabled(self) -> bool:
        return self._credentials.enabled

    def challenges(self) -> list[str]:
        """The `WWW-Authenticate` values of a 401, one per configured scheme."""
        result = []
        if self._credentials.users:
            result.append(f'Basic realm="{REALM}", charset="UTF-8"')
        if self._credentials.bearer_token is not None:
            result.append(f'Bearer realm="{REALM}"')
        return result

    def check(self, authorization: str | None) -> bool:
        """True when the header carries a valid token or user and password (or no auth is configured)."""
        if not self.enabled:
            return True
        if not authorization or len(authorization) > _MAX_AUTHORIZATION_BYTES:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        token = self._credentials.bearer_token
        # hashlib and hmac map libcrypto (3.4 MB of RSS): imported only once credentials are checked.
        import hmac

        if scheme == "bearer" and token is not None:
            return hmac.compare_digest(value.encode("utf-8", "surrogateescape"), token)
        if scheme == "basic" and self._credentials.users:
            return self._check_basic(value)
        return False

    def _check_basic(self, value: str) -> bool:
        try:
            decoded = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return False
        user_bytes, colon, password = decoded.partition(b":")
        if not colon:
            return False
        import hashlib
        import hmac

        cache_key = hmac.new(self._key, user_bytes + b"\0" + password, hashlib.sha256).digest()
        now = self._clock()
        with self._cache_lock:
            cached = self._cache.get(cache_key)
            if cached is not None and cached[1] > now:
                return cached[0]
        user = user_bytes.decode("utf-8", "replace")
        stored = self._credentials.users.get(user)
        with self._hash_lock:
            if stored is None:
                assert self._decoy is not None
                self._decoy.verify(password)
                ok = False
            else:
                ok = stored.verify(password)
        with self._cache_lock:
            self._cache[cache_key] = (ok, now + CACHE_SECONDS)
            self._cache.move_to_end(cache_key)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return ok
