"""TLS for gRPC, both ends: PEM files read and checked once, then grpc credentials.

Rules:
- A certificate goes with its key; one without the other is an error.
- Files are read and checked when the process starts, with Python's `ssl`
  (the key matches the certificate, a CA file holds certificates), so a
  mistake is an error naming the flag and the file, never a handshake that
  fails later. Replacing the files needs a restart.
- Server side (`ServerTls`): a certificate chain and key; with a CA
  (`--client-ca`) every client must present a certificate that CA signed
  (mTLS), or the handshake fails.
- Client side (`ClientTls`): TLS is on when any of `ca`, `cert`, `key` is set;
  without `ca`, gRPC's default roots verify the server. `cert` + `key` are the
  client certificate for a server that requires one. `over` lays one
  ClientTls over another field by field (a collector's own settings over the
  bridge-wide ones).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["ClientTls", "ServerTls", "TlsFileError"]


class TlsFileError(ValueError):
    """A TLS file is missing, unreadable, or not what its flag needs."""


@dataclass(frozen=True, slots=True)
class ServerTls:
    """A server's certificate chain and key (PEM paths), and the CA its clients need."""

    cert: str
    key: str
    client_ca: str | None = None

    def credentials(
        self, flags: tuple[str, str, str] = ("--tls-cert", "--tls-key", "--client-ca")
    ) -> grpc.ServerCredentials:
        """Checks the files and builds the credentials; `flags` name them in errors."""
        cert_flag, key_flag, ca_flag = flags
        chain, key = read_pair(self.cert, self.key, cert_flag, key_flag)
        roots = read_ca(self.client_ca, ca_flag) if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=roots, require_client_auth=roots is not None
        )


@dataclass(frozen=True, slots=True)
class ClientTls:
    """How a client dials a TLS server (PEM paths); all None: plaintext."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.ca or self.cert or self.key)

    @property
    def has_client_cert(self) -> bool:
        return bool(self.cert and self.key)

    def over(self, defaults: ClientTls) -> ClientTls:
        """These settings where set, `defaults` elsewhere."""
        return ClientTls(
            self.ca or defaults.ca, self.cert or defaults.cert, self.key or defaults.key
        )

    def problem(self) -> str | None:
        """What is wrong with the combination of settings, if anything (no I/O)."""
        if bool(self.cert) != bool(self.key):
            return "a client certificate needs both cert and key"
        return None

    def credentials(
        self,
        flags: tuple[str, str, str] = ("--collector-ca", "--collector-cert", "--collector-key"),
    ) -> grpc.ChannelCredentials:
        """Checks the files and builds the credentials; `flags` name them in errors."""
        ca_flag, cert_flag, key_flag = flags
        problem = self.problem()
        if problem:
            raise TlsFileError(f"{cert_flag}/{key_flag}: {problem}")
        roots = read_ca(self.ca, ca_flag) if self.ca else None
        if self.cert and self.key:
            chain, key = read_pair(self.cert, self.key, cert_flag, key_flag)
            return grpc.ssl_channel_credentials(roots, key, chain)
        return grpc.ssl_channel_credentials(roots)


def read(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsFileError(f"{flag} {path}: {exc.strerror or exc}") from None


def read_pair(cert: str, key: str, cert_flag: str, key_flag: str) -> tuple[bytes, bytes]:
    """The certificate chain and key, checked to belong together."""
    chain, key_pem = read(cert, cert_flag), read(key, key_flag)
    try:
        # An encrypted key gets an empty password (so an error) rather than a prompt.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, password=b"")
    except ssl.SSLError as exc:
        raise TlsFileError(
            f"{cert_flag} {cert} with {key_flag} {key}: not a PEM certificate chain and its "
            f"private key ({exc.reason or exc})"
        ) from None
    return chain, key_pem


def read_ca(path: str, flag: str) -> bytes:
    """CA certificates (PEM), checked to hold at least one."""
    pem = read(path, flag)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem.decode("ascii"))
    except (ssl.SSLError, ValueError):  # UnicodeDecodeError is a ValueError
        raise TlsFileError(f"{flag} {path}: holds no PEM CA certificate") from None
    return pem
