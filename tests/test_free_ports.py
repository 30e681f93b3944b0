"""Servers the tests and benches start come up although a picked port was taken meanwhile.

A port the kernel hands out for bind(0) is an ephemeral one, which any outgoing connection may
take as its local port between the pick and the server's bind: CI saw a bench's dev server
exit "address already in use" and its client wait 30 s for nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import harness
from pee.runtime import devserver
from pee.runtime.devserver import DevServer, ephemeral_range, free_port, port_open


def test_free_ports_lie_outside_the_kernels_ephemeral_range_and_differ() -> None:
    picked = [free_port() for _ in range(50)]
    assert len(set(picked)) == 50
    assert not any(port in ephemeral_range() for port in picked)


@pytest.fixture
def squatted() -> Iterator[socket.socket]:
    """A socket bound to a port and not listening, as an outgoing connection holds its local port
    (a listener would answer the readiness check in the server's place)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
        yield sock


def picks_first(monkeypatch: pytest.MonkeyPatch, module: object, port: int) -> list[int]:
    """free_port in `module` answers `port` once, then free ports; returns what it answered."""
    answered: list[int] = []

    def pick(ip: str = "127.0.0.1") -> int:
        answered.append(port if not answered else free_port(ip))
        return answered[-1]

    monkeypatch.setattr(module, "free_port", pick)
    return answered


def test_a_dev_server_whose_port_was_taken_starts_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, squatted: socket.socket
) -> None:
    taken = squatted.getsockname()[1]
    answered = picks_first(monkeypatch, devserver, taken)
    with DevServer(tmp_path / "dev.db", ui=False) as server:
        assert server.port != taken
        assert server.port == answered[-1]
        assert port_open(server.ip, server.port)
    assert "address already in use" in (tmp_path / "dev.log").read_text()


def test_a_dev_server_on_a_port_the_caller_chose_is_not_moved(
    tmp_path: Path, squatted: socket.socket
) -> None:
    taken = squatted.getsockname()[1]
    server = DevServer(tmp_path / "dev.db", port=taken, ui=False)
    try:
        with pytest.raises(RuntimeError, match="address already in use"):
            server.start()
    finally:
        # should it have started after all, it must not outlive the test
        server.stop()


def test_the_benches_server_whose_port_was_taken_starts_on_another(
    monkeypatch: pytest.MonkeyPatch, squatted: socket.socket
) -> None:
    taken = squatted.getsockname()[1]
    answered = picks_first(monkeypatch, harness, taken)
    with harness.DevServer() as server:
        assert server.address != f"127.0.0.1:{taken}"
        assert server.address == f"127.0.0.1:{answered[-2]}"
        host, port = server.address.split(":")
        assert port_open(host, int(port))
    assert not port_open(host, int(port))
