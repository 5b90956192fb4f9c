"""Worker listeners: SO_REUSEPORT sharing, port 0 reservation, `:port` on every interface,
clear "address in use", and a worker that imports no control-plane module."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from proxynow.ipc.listen import AddressInUse, ListenAddress, bind, display_url, reserve


def accepts(listeners: list[socket.socket], host: str, port: int) -> bool:
    """Connect to (host, port) and check one of `listeners` accepts it."""
    with socket.create_connection((host, port), timeout=5):
        for listener in listeners:
            listener.setblocking(True)
            listener.settimeout(0.5)
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()
            return True
    return False


def test_port_zero_is_reserved_once_and_shared_by_every_worker() -> None:
    address, reserved = reserve(ListenAddress("127.0.0.1", 0))
    try:
        assert address.port != 0
        workers = [bind(address), bind(address)]  # two workers, same port
        try:
            assert all(s.getsockname()[1] == address.port for w in workers for s in w)
            assert accepts([s for w in workers for s in w], "127.0.0.1", address.port)
        finally:
            for sockets in workers:
                for sock in sockets:
                    sock.close()
    finally:
        for sock in reserved:
            sock.close()


def test_empty_host_means_every_interface_ipv4_and_ipv6() -> None:
    address, reserved = reserve(ListenAddress("", 0))
    listeners = bind(address)
    try:
        assert accepts(listeners, "127.0.0.1", address.port)
        assert accepts(listeners, "::1", address.port)
    finally:
        for sock in [*listeners, *reserved]:
            sock.close()


def test_ipv6_literal_listens_on_ipv6_only() -> None:
    address, reserved = reserve(ListenAddress("::1", 0))
    listeners = bind(address)
    try:
        assert accepts(listeners, "::1", address.port)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", address.port), timeout=5).close()
    finally:
        for sock in [*listeners, *reserved]:
            sock.close()


def test_address_held_by_another_program_is_reported() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(AddressInUse) as error:
            reserve(ListenAddress("127.0.0.1", port))
    assert error.value.strerror == f"address 127.0.0.1:{port}/tcp is already in use"


def test_address_held_with_so_reuseport_by_another_program_is_reported_too() -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(AddressInUse):
            reserve(ListenAddress("127.0.0.1", port))


def test_display_url() -> None:
    assert display_url(ListenAddress("", 8000)) == "http://0.0.0.0:8000"
    assert display_url(ListenAddress("::1", 443), "https") == "https://[::1]:443"
    assert display_url(ListenAddress("127.0.0.1", 80)) == "http://127.0.0.1:80"


def test_worker_imports_no_control_plane_module() -> None:
    code = (
        "import sys, proxynow.edge.runtime.worker\n"
        "banned = ('proxynow.control', 'proxynow.providers', 'proxynow.api', 'proxynow.observe',"
        " 'proxynow.cli', 'proxynow.acme', 'watchfiles', 'aiohttp')\n"
        "print(sorted(m for m in sys.modules if m.startswith(banned)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
