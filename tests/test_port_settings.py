"""PEE_DEV_PORT, PEE_UI_PORT and PEE_CODEC_PORT that are not port numbers: every command says
which variable is wrong and exits 2 before it connects or starts anything."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pee.cli import worker_command
from pee.cli.main import main
from pee.runtime.devserver import free_port


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("PEE_DEV_PORT", "abc", "PEE_DEV_PORT='abc' is not a port number (1-65535)"),
        ("PEE_DEV_PORT", "70000", "PEE_DEV_PORT='70000' is not a port number"),
        ("PEE_UI_PORT", "99999", "PEE_UI_PORT='99999' is not a port number"),
        ("PEE_CODEC_PORT", "-1", "PEE_CODEC_PORT='-1' is not a port number"),
    ],
)
def test_server_start_refuses_a_port_that_is_not_a_number(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    words: str,
) -> None:
    dev = free_port()
    monkeypatch.setenv("PEE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PEE_DEV_PORT", str(dev))
    monkeypatch.setenv(variable, value)
    try:
        assert 2 == main(["server", "start"])
        assert words in capsys.readouterr().err
        assert not listening(dev)
    finally:
        if listening(dev):
            monkeypatch.delenv(variable)
            main(["server", "stop"])


def test_status_and_the_worker_name_the_bad_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PEE_DEV_PORT", "7233x")
    assert 2 == main(["status", "some-run"])
    assert "PEE_DEV_PORT='7233x' is not a port number" in capsys.readouterr().err
    assert 2 == worker_command.main([])
    assert "set it to a free port such as 7233, or unset it" in capsys.readouterr().err
