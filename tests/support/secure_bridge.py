"""Files for a bridge run with `--auth jwt` over TLS: a trustme CA and server
certificate (made at test time, never committed) and an HS256 secret."""

from __future__ import annotations

import base64
import hashlib
import ssl
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.tokens import AUDIENCE, write_secret

__all__ = ["SecureBridgeFiles"]


class SecureBridgeFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = trustme.CA()
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.cert = directory / "server.pem"
        self.key = directory / "server.key"
        self.issue(self.ca)
        self.secret = write_secret(directory)

    def issue(self, ca: trustme.CA) -> None:
        """A server certificate for 127.0.0.1 and localhost from `ca`, over the current files."""
        issued = ca.issue_cert("127.0.0.1", "localhost")
        issued.private_key_and_cert_chain_pem.write_to_path(self.cert)
        issued.private_key_pem.write_to_path(self.key)

    def client_ssl(self, ca: trustme.CA | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        (ca or self.ca).configure_trust(context)
        return context

    def spki_sha256(self) -> str:
        """The server key's SPKI hash, base64, as Chromium's
        --ignore-certificate-errors-spki-list takes it (a pin on this one key)."""
        cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    @property
    def token_args(self) -> list[str]:
        """The bridge's flags for tokens alone (plain ws://)."""
        return ["--auth", "jwt", "--jwt-secret-file", str(self.secret), "--jwt-audience", AUDIENCE]

    @property
    def args(self) -> list[str]:
        """Tokens over TLS."""
        return [*self.token_args, "--tls-cert", str(self.cert), "--tls-key", str(self.key)]
