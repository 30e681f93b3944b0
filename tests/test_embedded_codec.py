"""The embedded dev server comes with a codec server: `server start` starts both, the Web UI is
configured with it (`--ui-codec-endpoint`, visible in the UI's settings endpoint), it decodes
lz4 payloads for the UI's origin, and `server stop` stops both."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from runtime.devserver import free_port, port_open
from runtime.embedded import process_alive
from tests.conftest import cli_env, starter  # noqa: F401  (the module's private server)
from tests.test_codec_server import big_payload, post


def test_server_start_configures_the_web_ui_with_a_codec_server(
        cli_env: dict[str, str]) -> None:  # noqa: F811
    """server.json records the codec server; the dev server runs with --ui-codec-endpoint at
    it; the UI's /api/v1/settings names it; it decodes for the UI's origin; stop ends it."""
    cli_env["PEE_CODEC_PORT"] = str(free_port())
    started = starter(cli_env, "server", "start")
    assert 0 == started.returncode, started.stdout + started.stderr
    record = json.loads((Path(cli_env["PEE_STATE_DIR"]) / "server.json").read_text())
    codec = f"http://127.0.0.1:{record['codec_port']}"
    ui = f"http://127.0.0.1:{record['ui_port']}"
    assert cli_env["PEE_CODEC_PORT"] == str(record["codec_port"])
    assert codec in started.stdout
    flags = Path(f"/proc/{record['pid']}/cmdline").read_bytes().split(b"\0")
    assert codec.encode() == flags[flags.index(b"--ui-codec-endpoint") + 1]
    with urllib.request.urlopen(f"{ui}/api/v1/settings", timeout=10) as response:
        assert codec == json.loads(response.read())["Codec"]["Endpoint"]
    status, _, encoded = post(f"{codec}/encode", {"payloads": [big_payload()]})
    assert 200 == status
    status, headers, decoded = post(f"{codec}/decode", encoded, Origin=ui)
    assert (200, ui) == (status, headers.get("Access-Control-Allow-Origin"))
    assert [big_payload()] == decoded["payloads"]
    assert "codec:" in starter(cli_env, "server", "status").stdout
    stopped = starter(cli_env, "server", "stop")
    assert 0 == stopped.returncode, stopped.stdout + stopped.stderr
    assert not process_alive(record["codec_pid"])
    assert not port_open("127.0.0.1", record["codec_port"])


def test_a_headless_server_starts_no_codec_server(cli_env: dict[str, str]) -> None:  # noqa: F811
    """--headless: no Web UI, so no codec server and no codec port in server.json."""
    started = starter(cli_env, "server", "start", "--headless")
    assert 0 == started.returncode, started.stdout + started.stderr
    record = json.loads((Path(cli_env["PEE_STATE_DIR"]) / "server.json").read_text())
    assert (None, None) == (record["codec_pid"], record["codec_port"])
    assert 0 == starter(cli_env, "server", "stop").returncode
