"""A throw-away CA with a server certificate for 127.0.0.1 and client certificates, made in the test.

Made with the `cryptography` package (a dev dependency) when it is installed, otherwise with the
`openssl` command (the exporter-only Python 3.9 venv has no cryptography); `make_pki` returns None
when neither is there, and the TLS tests skip.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path  # a CA that signed nothing here: trusting it alone must fail
    other_client_cert: Path  # a client certificate signed by other_ca
    other_client_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _write_cert(cert: Any, path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(common_name: str) -> tuple[Any, ec.EllipticCurvePrivateKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca: tuple[Any, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
) -> tuple[Any, ec.EllipticCurvePrivateKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = _key()
    ca_cert, ca_key = ca
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(folder: Path) -> Pki | None:
    """Write a CA, a server certificate for 127.0.0.1/localhost and client certificates into `folder`.

    None when neither cryptography nor the openssl command is available.
    """
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return _make_pki_with_openssl(folder) if shutil.which("openssl") else None
    return _make_pki_with_cryptography(folder)


def _make_pki_with_cryptography(folder: Path) -> Pki:
    ca = _ca("millwatch test CA")
    other = _ca("some other CA")
    server_cert, server_key = _leaf("127.0.0.1", ca, server=True)
    client_cert, client_key = _leaf("central-scraper", ca, server=False)
    stranger_cert, stranger_key = _leaf("stranger", other, server=False)
    return Pki(
        ca_cert=_write_cert(ca[0], folder / "ca.pem"),
        server_cert=_write_cert(server_cert, folder / "server.pem"),
        server_key=_write_key(server_key, folder / "server.key"),
        client_cert=_write_cert(client_cert, folder / "client.pem"),
        client_key=_write_key(client_key, folder / "client.key"),
        other_ca_cert=_write_cert(other[0], folder / "other-ca.pem"),
        other_client_cert=_write_cert(stranger_cert, folder / "stranger.pem"),
        other_client_key=_write_key(stranger_key, folder / "stranger.key"),
    )


_OPENSSL_CONFIG = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
[client]
basicConstraints = critical, CA:FALSE
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
"""


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def _make_pki_with_openssl(folder: Path) -> Pki:
    config = folder / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG, encoding="ascii")
    new_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")

    def ca(name: str, common_name: str) -> tuple[Path, Path]:
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        _openssl("req", "-x509", *new_key, "-keyout", key, "-out", cert, "-days", "1",
                 "-subj", f"/CN={common_name}", "-config", config, "-extensions", "ca")  # fmt: skip
        return cert, key

    def leaf(name: str, common_name: str, issuer: tuple[Path, Path], section: str) -> tuple[Path, Path]:
        cert, key, request = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
        _openssl("req", "-new", *new_key, "-keyout", key, "-out", request, "-subj", f"/CN={common_name}",
                 "-config", config)  # fmt: skip
        _openssl("x509", "-req", "-in", request, "-CA", issuer[0], "-CAkey", issuer[1], "-days", "1",
                 "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-out", cert,
                 "-extfile", config, "-extensions", section)  # fmt: skip
        return cert, key

    ca_files, other_files = ca("ca", "millwatch test CA"), ca("other-ca", "some other CA")
    server = leaf("server", "127.0.0.1", ca_files, "server")
    client = leaf("client", "central-scraper", ca_files, "client")
    stranger = leaf("stranger", "stranger", other_files, "client")
    return Pki(
        ca_cert=ca_files[0],
        server_cert=server[0],
        server_key=server[1],
        client_cert=client[0],
        client_key=client[1],
        other_ca_cert=other_files[0],
        other_client_cert=stranger[0],
        other_client_key=stranger[1],
    )
