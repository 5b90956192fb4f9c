"""Pebble (Let's Encrypt's test CA) and pebble-challtestsrv for the ACME tests.

`PebbleFactory.start(http_port=..., tls_port=...)` writes a throwaway CA and a
certificate for Pebble's own HTTPS, a Pebble config pointing HTTP-01 / TLS-ALPN-01
validation at the given ports of 127.0.0.1, starts challtestsrv (every name resolves to
127.0.0.1) and Pebble on free ports (the ACME directory on `listen_host`, 127.0.0.1 by
default: the Docker bridge's address for an ACME client in a container), and polls
until the directory answers. Each process is stopped by its PID and waited for (both
take ~1.5 s to exit after SIGTERM). The ports are free when chosen; a process that loses
a port race exits or never answers, and the start is retried with new ports.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Pebble", "PebbleFactory", "free_port", "pebble_factory"]

PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
START_TIMEOUT = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for programs that cannot listen on port 0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Pebble:
    directory: Path
    ca_file: Path  # the CA of Pebble's own HTTPS (ACME clients trust it)
    port: int
    management_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    host: str = "127.0.0.1"  # where the ACME directory listens (its certificate names it)

    @property
    def directory_url(self) -> str:
        return f"https://{self.host}:{self.port}/dir"

    def _get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            body: bytes = response.read()
            return body

    def root_pem(self, index: int = 0) -> bytes:
        """A root of the issuing chains (changes at every Pebble start); 0 is the default."""
        return self._get(f"https://127.0.0.1:{self.management_port}/roots/{index}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class PebbleFactory:
    def __init__(self, base: Path) -> None:
        self._base = base
        self._started: list[Pebble] = []
        self._count = 0

    def start(
        self,
        *,
        http_port: int,
        tls_port: int,
        validity: int | None = None,
        eab_keys: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        listen_host: str = "127.0.0.1",
    ) -> Pebble:
        """Start Pebble; `eab_keys` (kid → base64url HMAC key) makes EAB required,
        `env` adds environment variables (PEBBLE_ALTERNATE_ROOTS, ...), `listen_host` is
        the local address of the ACME directory (the management port stays on 127.0.0.1)."""
        extra = {"externalAccountBindingRequired": True, "externalAccountMACKeys": eab_keys}
        options: dict[str, Any] = extra if eab_keys else {}
        if validity is not None:
            options["certificateValidityPeriod"] = validity
        for _ in range(3):
            pebble = self._try_start(http_port, tls_port, options, env or {}, listen_host)
            if pebble is not None:
                return pebble
        raise AssertionError("pebble did not start (see the logs in the test directory)")

    def start_for_proxy(self) -> tuple[Pebble, int, int]:
        """Pebble validating on two fresh ports, for a proxy's `web` (HTTP-01) and
        `websecure` (TLS-ALPN-01) entrypoints: (pebble, web port, websecure port)."""
        web, websecure = free_port(), free_port()
        return self.start(http_port=web, tls_port=websecure), web, websecure

    def stop_all(self) -> None:
        for pebble in self._started:
            pebble.stop()

    def _try_start(
        self,
        http_port: int,
        tls_port: int,
        options: dict[str, Any],
        env: dict[str, str],
        listen_host: str,
    ) -> Pebble | None:
        self._count += 1
        directory = self._base / f"pebble{self._count}"
        directory.mkdir(parents=True)
        ca_file = _write_https_certificates(directory, listen_host)
        dns_port, challtest_mgmt = free_port(), free_port()
        pebble = Pebble(directory, ca_file, free_port(listen_host), free_port(), host=listen_host)
        self._started.append(pebble)
        config: dict[str, Any] = {
            "listenAddress": f"{listen_host}:{pebble.port}",
            "managementListenAddress": f"127.0.0.1:{pebble.management_port}",
            "certificate": str(directory / "pebble.pem"),
            "privateKey": str(directory / "pebble.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            **options,
        }
        (directory / "pebble.json").write_text(json.dumps({"pebble": config}))
        challtestsrv = shutil.which("pebble-challtestsrv") or "pebble-challtestsrv"
        pebble.processes.append(
            _spawn(
                directory / "challtestsrv.log",
                env,
                [challtestsrv, "-dns01", f"127.0.0.1:{dns_port}", "-http01", "",
                 "-https01", "", "-tlsalpn01", "",
                 "-management", f"127.0.0.1:{challtest_mgmt}",
                 "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            )
        )  # fmt: skip
        pebble.processes.append(
            _spawn(
                directory / "pebble.log",
                env,
                [shutil.which("pebble") or "pebble", "-config", str(directory / "pebble.json"),
                 "-dnsserver", f"127.0.0.1:{dns_port}"],
            )
        )  # fmt: skip
        if _wait_ready(pebble):
            return pebble
        pebble.stop()
        return None


def _spawn(log: Path, env: dict[str, str], argv: list[str]) -> subprocess.Popen[bytes]:
    environment = {**os.environ, **PEBBLE_ENV, **env}
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=environment
        )


def _wait_ready(pebble: Pebble) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in pebble.processes):
            return False
        try:
            pebble._get(pebble.directory_url)
            pebble.root_pem()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def _write_https_certificates(directory: Path, listen_host: str) -> Path:
    """A throwaway CA and a certificate for localhost / 127.0.0.1 / ::1 (and
    `listen_host`) signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxynow test pebble CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    if listen_host not in ("127.0.0.1", "::1"):
        names.append(x509.IPAddress(ipaddress.ip_address(listen_host)))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "pebble.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (directory / "pebble.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file


@pytest.fixture
def pebble_factory(tmp_path: Path) -> Iterator[PebbleFactory]:
    """Pebbles started by the test, all stopped after it (re-exported by the conftests)."""
    factory = PebbleFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()
