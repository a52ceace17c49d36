"""Password hashes for web.basic_auth_users: the formats read, the ones refused, and the cache."""

from __future__ import annotations

import base64

import pytest

from exporter.passwords import PasswordHashError, hash_password, parse_hash
from exporter.webauth import Authenticator, Credentials

# Made by passlib 1.7 (`pbkdf2_sha256.using(rounds=1000).hash("password")`, `scrypt.using(rounds=4)`):
# hashes written by that common tool are read as they are.
PASSLIB_PBKDF2 = "$pbkdf2-sha256$1000$X4sxhrC2di5l7P2/dy7lfA$1HQtZQ2SouILJjifq7A36vjWSHEHvJ04moC.RaX5Hrc"
PASSLIB_SCRYPT = "$scrypt$ln=4,r=8,p=1$VkqJcc65N+YcQ4iRck6JsQ$9x0LNIjXEQsTdPAPt7zlZK04dpa5qLM58Qr4xHyH/rc"


@pytest.mark.parametrize("stored", [PASSLIB_PBKDF2, PASSLIB_SCRYPT])
def test_hashes_made_by_passlib_are_read(stored: str) -> None:
    parsed = parse_hash(stored)
    assert parsed.verify(b"password")
    assert not parsed.verify(b"Password")


def test_scrypt_n_spelling_is_read_too() -> None:
    same = PASSLIB_SCRYPT.replace("ln=4,", "n=16,")
    assert parse_hash(same).verify(b"password")


@pytest.mark.parametrize("algorithm", ["scrypt", "pbkdf2-sha256"])
def test_hash_password_round_trip_with_a_fresh_salt(algorithm: str) -> None:
    first, second = hash_password(b"s3cret", algorithm), hash_password(b"s3cret", algorithm)
    assert first != second, "salted"
    assert parse_hash(first).verify(b"s3cret") and not parse_hash(first).verify(b"s3cres")
    assert "s3cret" not in first


def test_bcrypt_hashes_as_htpasswd_and_exporter_toolkit_write_them() -> None:
    bcrypt = pytest.importorskip("bcrypt")
    made = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    for prefix in ("$2a$", "$2b$", "$2y$"):
        parsed = parse_hash(prefix + made[4:])
        assert parsed.algorithm == "bcrypt"
        assert parsed.verify(b"pw") and not parsed.verify(b"pW")
    assert parse_hash(hash_password(b"pw", "bcrypt")).verify(b"pw")


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("hunter2", "not a password hash: expected bcrypt"),
        ("$2b$12$short", "not a valid bcrypt hash"),
        ("$2b$31$" + "a" * 53, "bcrypt cost 31 is above 16"),
        ("$scrypt$ln=4,r=8$c2FsdA$aGFzaA", "needs its ln (or n), r and p"),
        ("$scrypt$n=1000,r=8,p=1$c2FsdHNhbHQ$" + "A" * 43, "n a power of 2"),
        ("$scrypt$ln=24,r=8,p=1$c2FsdHNhbHQ$" + "A" * 43, "more than 256 MiB per check"),
        ("$scrypt$ln=4,r=8,p=1,x=2$c2FsdA$" + "A" * 43, "unknown scrypt parameter 'x'"),
        ("$pbkdf2-sha256$10$c2FsdA$" + "A" * 43, "rounds 10 out of range"),
        ("$pbkdf2-sha256$1000$c2FsdA$QUJD", "shorter than 16 bytes"),
    ],
)
def test_unusable_hashes_are_refused_with_the_reason(stored: str, message: str) -> None:
    with pytest.raises(PasswordHashError) as caught:
        parse_hash(stored)
    assert message in str(caught.value)


def test_verified_credentials_are_cached_briefly_under_a_keyed_hash() -> None:
    now = [1000.0]
    stored = parse_hash(hash_password(b"pw", "scrypt"))
    checks: list[bytes] = []

    class Counting:  # the real hash, counting how often it is computed
        algorithm = stored.algorithm
        text = stored.text

        def verify(self, password: bytes) -> bool:
            checks.append(password)
            return stored.verify(password)

    auth = Authenticator(Credentials(None, {"u": Counting()}), clock=lambda: now[0])  # type: ignore[dict-item]
    header = "Basic " + base64.b64encode(b"u:pw").decode()
    assert auth.check(header) and auth.check(header)
    assert len(checks) == 1, "the second check came from the cache"
    assert not auth.check("Basic " + base64.b64encode(b"u:px").decode())
    assert all(b"pw" not in key for key in auth._cache), "the cache keys are HMACs, not passwords"
    now[0] += 61
    assert auth.check(header)
    assert len(checks) == 3, "an expired entry is checked again"
    assert not auth.check(None) and not auth.check("Bearer x") and not auth.check("Basic")
