"""TLS files are checked when loaded: each mistake names its flag and file."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from metrics_shared.tls import ClientTls, ServerTls, TlsFileError


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    cert = ca.issue_cert("127.0.0.1")
    other = trustme.CA().issue_cert("127.0.0.1")
    paths = {
        "ca": tmp_path / "ca.pem",
        "cert": tmp_path / "cert.pem",
        "key": tmp_path / "key.pem",
        "other_key": tmp_path / "other-key.pem",
        "garbage": tmp_path / "garbage.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    other.private_key_pem.write_to_path(str(paths["other_key"]))
    paths["garbage"].write_text("not a certificate\n")
    return {name: str(path) for name, path in paths.items()}


def test_good_files_make_server_and_channel_credentials(files: dict[str, str]) -> None:
    assert ServerTls(files["cert"], files["key"], files["ca"]).credentials() is not None
    assert ClientTls(files["ca"], files["cert"], files["key"]).credentials() is not None
    assert ClientTls(files["ca"]).credentials() is not None


def test_a_missing_file_is_named_with_its_flag(files: dict[str, str]) -> None:
    with pytest.raises(TlsFileError, match=r"--tls-key /nonexistent\.pem: No such file"):
        ServerTls(files["cert"], "/nonexistent.pem").credentials()


def test_a_key_that_does_not_match_its_certificate_is_refused(files: dict[str, str]) -> None:
    with pytest.raises(TlsFileError, match=r"--tls-cert .* with --tls-key .*: not a PEM"):
        ServerTls(files["cert"], files["other_key"]).credentials()


def test_a_ca_file_without_certificates_is_refused(files: dict[str, str]) -> None:
    with pytest.raises(TlsFileError, match=r"--client-ca .*garbage.pem: holds no PEM CA"):
        ServerTls(files["cert"], files["key"], files["garbage"]).credentials()
    with pytest.raises(TlsFileError, match=r"--collector-ca .*garbage.pem: holds no PEM CA"):
        ClientTls(files["garbage"]).credentials()


def test_a_client_certificate_needs_its_key() -> None:
    assert ClientTls(cert="c.pem").problem() == "a client certificate needs both cert and key"
    with pytest.raises(TlsFileError, match="--collector-cert/--collector-key"):
        ClientTls(key="k.pem").credentials()


def test_a_collectors_own_settings_lie_over_the_bridge_wide_ones() -> None:
    defaults = ClientTls("all-ca.pem", "bridge.pem", "bridge.key")
    assert ClientTls(ca="c2-ca.pem").over(defaults) == ClientTls(
        "c2-ca.pem", "bridge.pem", "bridge.key"
    )
    assert ClientTls().over(ClientTls()) == ClientTls()
    assert not ClientTls().enabled
    assert ClientTls(ca="ca.pem").enabled and not ClientTls(ca="ca.pem").has_client_cert
