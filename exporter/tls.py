"""The exporter's TLS server context, from the standard library's `ssl` (TLS 1.2 at least).

With a client CA the connection is mutual TLS: a client without a certificate signed by that CA is
refused during the handshake, before it can send a request. `ssl` is imported when a context is
made: an exporter without TLS does not carry its 1.1 MB of RSS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

_MAX_PEM_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TLSFiles:
    cert_file: str
    key_file: str
    client_ca_file: str | None = None


class TLSFileError(ValueError):
    """One of the TLS files cannot be used. `field` names which: cert_file, key_file or client_ca_file."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """A server-side SSLContext holding the certificate chain and key; raises TLSFileError."""
    _pem("cert_file", files.cert_file, b"CERTIFICATE-----", "PEM certificate")
    _pem("key_file", files.key_file, b"PRIVATE KEY-----", "PEM private key")
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert_file, files.key_file)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in str(reason).upper():
            raise TLSFileError("key_file", "the key does not belong to the certificate") from exc
        raise TLSFileError("cert_file", f"cannot load the certificate and its key as PEM ({reason})") from exc
    if files.client_ca_file is not None:
        _pem("client_ca_file", files.client_ca_file, b"CERTIFICATE-----", "PEM CA certificate")
        try:
            context.load_verify_locations(cafile=files.client_ca_file)
        except ssl.SSLError as exc:
            raise TLSFileError(
                "client_ca_file", f"cannot load the CA certificates as PEM ({exc.reason or exc})"
            ) from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _pem(field: str, path: str, marker: bytes, what: str) -> None:
    """Check `path` can be read and looks like `what`, so that the error names the right file.

    The content is not quoted in any message: a key file holds a secret.
    """
    try:
        with open(path, "rb") as handle:
            content = handle.read(_MAX_PEM_BYTES)
    except OSError as exc:
        raise TLSFileError(field, f"cannot read {path}: {exc.strerror or exc}") from exc
    if not content.strip():
        raise TLSFileError(field, f"{path} is empty")
    if marker not in content:
        raise TLSFileError(field, f"{path} holds no {what} (no '-----BEGIN ...{marker.decode()}' line)")
