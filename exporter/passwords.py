"""Password hashes for `web.basic_auth_users`: make one, check a password against one.

Three self-describing formats are read:

    $2a$ / $2b$ / $2y$...                 bcrypt, as exporter-toolkit and `htpasswd -B` write it;
                                          needs the optional `bcrypt` package (millwatch[bcrypt])
    $scrypt$ln=15,r=8,p=1$SALT$HASH        scrypt through hashlib (`n=32768` is read as well as `ln=15`)
    $pbkdf2-sha256$ROUNDS$SALT$HASH       PBKDF2-HMAC-SHA256 through hashlib

SALT and HASH are base64 without padding, spelled as passlib spells them (`.` for `+` in PBKDF2
hashes), so hashes made with passlib are read as they are and passlib reads ours. scrypt and PBKDF2
need nothing beyond the standard library. A hash whose cost is outside sane limits is refused when
the configuration is read, so that a hand-edited file cannot make each login take minutes or
gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

SCRYPT_DEFAULT_LOG2_N = 15  # 32 MiB and about 0.1 s per check with r=8: bearable on an old machine PC
SCRYPT_R = 8
SCRYPT_P = 1
PBKDF2_DEFAULT_ROUNDS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256
BCRYPT_DEFAULT_ROUNDS = 12
SALT_BYTES = 16
HASH_BYTES = 32

_MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
_MAX_PBKDF2_ROUNDS = 10_000_000
_MAX_BCRYPT_COST = 16
_BCRYPT = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
_SCRYPT = re.compile(r"^\$scrypt\$([a-z]+=\d+(?:,[a-z]+=\d+)*)\$([./A-Za-z0-9+]+)\$([./A-Za-z0-9+]+)$")
_PBKDF2 = re.compile(r"^\$pbkdf2-sha256\$(\d+)\$([./A-Za-z0-9+]+)\$([./A-Za-z0-9+]+)$")

ALGORITHMS = ("scrypt", "pbkdf2-sha256", "bcrypt")


class PasswordHashError(ValueError):
    """A stored hash that cannot be used; `str()` says why, never quoting the hash."""


@dataclass(frozen=True)
class PasswordHash:
    """A parsed, checked hash: `verify(password)` is all a caller needs."""

    algorithm: str
    text: str

    def verify(self, password: bytes) -> bool:
        """True when `password` matches. Costs what the hash's parameters say (tens of ms or more)."""
        if self.algorithm == "bcrypt":
            import bcrypt  # checked importable by parse_hash

            try:
                return bool(bcrypt.checkpw(password, self.text.encode("ascii")))
            except ValueError:
                return False
        import hashlib  # here, not at the top: hashlib maps libcrypto (3.4 MB of RSS), needed only with auth
        import hmac

        if self.algorithm == "scrypt":
            params, salt, expected = _scrypt_parts(self.text)
            got = hashlib.scrypt(
                password,
                salt=salt,
                n=params["n"],
                r=params["r"],
                p=params["p"],
                maxmem=_scrypt_memory(params) + 1024 * 1024,
                dklen=len(expected),
            )
            return hmac.compare_digest(got, expected)
        rounds, salt, expected = _pbkdf2_parts(self.text)
        got = hashlib.pbkdf2_hmac("sha256", password, salt, rounds, dklen=len(expected))
        return hmac.compare_digest(got, expected)


def bcrypt_available() -> bool:
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        return False
    return True


def parse_hash(text: str) -> PasswordHash:
    """Check that `text` is a usable hash; raise PasswordHashError saying what is wrong."""
    text = text.strip()
    if text.startswith("$2"):
        match = _BCRYPT.match(text)
        if match is None:
            raise PasswordHashError("not a valid bcrypt hash ($2a$/$2b$/$2y$, cost, 53 characters)")
        if int(match.group(1)) > _MAX_BCRYPT_COST:
            raise PasswordHashError(f"bcrypt cost {match.group(1)} is above {_MAX_BCRYPT_COST}")
        if not bcrypt_available():
            raise PasswordHashError(
                "a bcrypt hash needs the optional bcrypt package: pip install 'millwatch[bcrypt]' "
                "(or use a hash from `millwatch-exporter hash-password`, scrypt by default)"
            )
        return PasswordHash("bcrypt", text)
    if text.startswith("$scrypt$"):
        _scrypt_parts(text)
        return PasswordHash("scrypt", text)
    if text.startswith("$pbkdf2-sha256$"):
        _pbkdf2_parts(text)
        return PasswordHash("pbkdf2-sha256", text)
    raise PasswordHashError(
        "not a password hash: expected bcrypt ($2b$...), $scrypt$... or $pbkdf2-sha256$... "
        "(make one with `millwatch-exporter hash-password`; plain passwords are refused)"
    )


def hash_password(password: bytes, algorithm: str = "scrypt") -> str:
    """A new salted hash of `password` in one of the formats above."""
    if not password:
        raise ValueError("the password is empty")
    import hashlib  # here, not at the top: see PasswordHash.verify

    if algorithm == "scrypt":
        salt = os.urandom(SALT_BYTES)
        n = 1 << SCRYPT_DEFAULT_LOG2_N
        digest = hashlib.scrypt(
            password, salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=2 * 128 * SCRYPT_R * n, dklen=HASH_BYTES
        )
        params = f"ln={SCRYPT_DEFAULT_LOG2_N},r={SCRYPT_R},p={SCRYPT_P}"
        return f"$scrypt${params}${_b64(salt, adapted=False)}${_b64(digest, adapted=False)}"
    if algorithm == "pbkdf2-sha256":
        salt = os.urandom(SALT_BYTES)
        digest = hashlib.pbkdf2_hmac("sha256", password, salt, PBKDF2_DEFAULT_ROUNDS, dklen=HASH_BYTES)
        return f"$pbkdf2-sha256${PBKDF2_DEFAULT_ROUNDS}${_b64(salt)}${_b64(digest)}"
    if algorithm == "bcrypt":
        try:
            import bcrypt
        except ImportError:
            raise ValueError(
                "bcrypt needs the optional bcrypt package: pip install 'millwatch[bcrypt]'"
            ) from None
        if len(password) > 72:
            raise ValueError("bcrypt reads at most 72 bytes of a password; use scrypt for longer ones")
        hashed: bytes = bcrypt.hashpw(password, bcrypt.gensalt(BCRYPT_DEFAULT_ROUNDS))
        return hashed.decode("ascii")
    raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")


def _b64(data: bytes, *, adapted: bool = True) -> str:
    text = base64.b64encode(data).decode("ascii").rstrip("=")
    return text.replace("+", ".") if adapted else text


def _unb64(text: str) -> bytes:
    text = text.replace(".", "+")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise PasswordHashError("salt or hash is not base64") from None


def _scrypt_memory(params: dict[str, int]) -> int:
    return 128 * params["r"] * (params["n"] + params["p"] + 2)


def _scrypt_parts(text: str) -> tuple[dict[str, int], bytes, bytes]:
    match = _SCRYPT.match(text)
    if match is None:
        raise PasswordHashError("not a valid scrypt hash: expected $scrypt$ln=15,r=8,p=1$SALT$HASH")
    raw = dict(item.split("=", 1) for item in match.group(1).split(","))
    params: dict[str, int] = {}
    for name, value in raw.items():
        if name == "ln":
            if not 1 <= int(value) <= 30:
                raise PasswordHashError(f"scrypt ln={value} is out of range 1-30")
            params["n"] = 1 << int(value)
        elif name in ("n", "r", "p"):
            params[name] = int(value)
        else:
            raise PasswordHashError(f"unknown scrypt parameter {name!r} (expected ln or n, r, p)")
    if set(params) != {"n", "r", "p"}:
        raise PasswordHashError("a scrypt hash needs its ln (or n), r and p parameters")
    n, r, p = params["n"], params["r"], params["p"]
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or p > 16:
        raise PasswordHashError("scrypt parameters out of range (n a power of 2, r ≥ 1, p 1-16)")
    if _scrypt_memory(params) > _MAX_SCRYPT_MEMORY:
        raise PasswordHashError(f"scrypt parameters need more than {_MAX_SCRYPT_MEMORY >> 20} MiB per check")
    salt, digest = _unb64(match.group(2)), _unb64(match.group(3))
    if len(digest) < 16:
        raise PasswordHashError("the scrypt hash is shorter than 16 bytes")
    return params, salt, digest


def _pbkdf2_parts(text: str) -> tuple[int, bytes, bytes]:
    match = _PBKDF2.match(text)
    if match is None:
        raise PasswordHashError("not a valid PBKDF2 hash: expected $pbkdf2-sha256$ROUNDS$SALT$HASH")
    rounds = int(match.group(1))
    if not 1000 <= rounds <= _MAX_PBKDF2_ROUNDS:
        raise PasswordHashError(f"pbkdf2-sha256 rounds {rounds} out of range 1000-{_MAX_PBKDF2_ROUNDS}")
    salt, digest = _unb64(match.group(2)), _unb64(match.group(3))
    if len(digest) < 16:
        raise PasswordHashError("the pbkdf2-sha256 hash is shorter than 16 bytes")
    return rounds, salt, digest
