"""Test certificates made at test time with trustme, written to PEM files.

`Certificates(directory)` holds one CA, a server certificate for 127.0.0.1
and localhost, and client certificates on demand; `paths` are what the
processes' --tls-*/--client-ca/--collector-* flags take, `credentials` what
an in-process gRPC client uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import trustme

__all__ = ["Certificates", "PemPair"]


@dataclass(frozen=True)
class PemPair:
    cert: str
    key: str

    def read(self) -> tuple[bytes, bytes]:
        return Path(self.cert).read_bytes(), Path(self.key).read_bytes()


class Certificates:
    def __init__(self, directory: Path, ca: trustme.CA | None = None) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.authority = ca or trustme.CA()
        self.ca = str(directory / "ca.pem")
        self.authority.cert_pem.write_to_path(self.ca)
        self.server = self.issue("server", "127.0.0.1", "localhost")

    def issue(self, name: str, *identities: str) -> PemPair:
        """A certificate (chain) and key signed by this CA, as files named after `name`."""
        issued = self.authority.issue_cert(*(identities or (name,)))
        pair = PemPair(str(self.directory / f"{name}.pem"), str(self.directory / f"{name}.key"))
        Path(pair.cert).write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        issued.private_key_pem.write_to_path(pair.key)
        return pair

    def server_args(self, client_ca: bool = False) -> list[str]:
        """A collector's flags to serve TLS (and require client certificates)."""
        args = ["--tls-cert", self.server.cert, "--tls-key", self.server.key]
        return [*args, "--client-ca", self.ca] if client_ca else args

    def credentials(self, client: PemPair | None = None) -> grpc.ChannelCredentials:
        """For a gRPC client trusting this CA, presenting `client` if given."""
        roots = Path(self.ca).read_bytes()
        if client is None:
            return grpc.ssl_channel_credentials(roots)
        chain, key = client.read()
        return grpc.ssl_channel_credentials(roots, key, chain)
