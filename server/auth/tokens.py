"""Random secrets (API tokens, session ids, CSRF tokens) and the hashes they are kept under."""

from __future__ import annotations

import hashlib
import hmac
import secrets

#: API tokens start with this, so that a leaked one is recognised (secret scanners, log reviews).
TOKEN_PREFIX = "mwt_"
SECRET_BYTES = 32


def new_api_token() -> str:
    """A fresh API token: the prefix and 32 random bytes, URL-safe base64 (47 characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def new_secret() -> str:
    """A fresh session id or CSRF token: 32 random bytes, URL-safe base64."""
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_hash(secret: str) -> str:
    """SHA-256 (hex) of a high-entropy secret: what the database keeps and looks up.

    A slow hash protects guessable passwords; 32 random bytes cannot be guessed, and a fast hash
    lets a request find its token by an index lookup.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_secret(given: str, expected_hash: str) -> bool:
    """Whether `given` hashes to `expected_hash`, compared in constant time."""
    return hmac.compare_digest(secret_hash(given), expected_hash)


def csrf_token_for(session_id: str) -> str:
    """The CSRF token of a session: derived from its id, so the page can ask for it again after a
    reload (GET /api/auth/me) without the server keeping it; a page of another site cannot compute
    it, because it cannot read the HttpOnly session cookie."""
    return hashlib.sha256(b"millwatch csrf\0" + session_id.encode("utf-8", "surrogatepass")).hexdigest()
