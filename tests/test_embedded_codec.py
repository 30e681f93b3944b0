"""The embedded dev server comes with a codec server: `server start` starts both, the Web UI is
configured with it (`--ui-codec-endpoint`, visible in the UI's settings endpoint) including its
random token, it decodes lz4 payloads for the UI's origin only, `server stop` stops both, and a
start after the dev server died stops the codec server the dead one left."""

from __future__ import annotations

import json
import os
import signal
import stat
import urllib.request
from pathlib import Path

from temporalio.envconfig import ClientConfigProfile

from pee.runtime.devserver import free_port, port_open
from pee.runtime.embedded import process_alive
from tests.conftest import cli_env  # noqa: F401  (the module's private server)
from tests.helpers import starter
from tests.test_codec_server import big_payload, post


def record_of(env: dict[str, str]) -> dict:
    return json.loads((Path(env["PEE_STATE_DIR"]) / "server.json").read_text())


def test_server_start_configures_the_web_ui_with_a_codec_server(cli_env: dict[str, str]) -> None:  # noqa: F811
    """server.json records the codec server and its token; the dev server runs with
    --ui-codec-endpoint at it, token as the path; the UI's /api/v1/settings names it; it
    decodes for the UI's origin with the token, refuses without it or from another origin;
    temporal.toml names it for the CLI; stop ends it and removes temporal.toml."""
    cli_env["PEE_CODEC_PORT"] = str(free_port())
    started = starter(cli_env, "server", "start")
    assert 0 == started.returncode, started.stdout + started.stderr
    record = record_of(cli_env)
    token = record["codec_token"]
    assert token and len(token) >= 32
    endpoint = f"http://127.0.0.1:{record['codec_port']}/{token}"
    ui = f"http://127.0.0.1:{record['ui_port']}"
    assert cli_env["PEE_CODEC_PORT"] == str(record["codec_port"])
    assert f"http://127.0.0.1:{record['codec_port']}" in started.stdout
    assert token not in started.stdout  # the token stays in owner-only files
    flags = Path(f"/proc/{record['pid']}/cmdline").read_bytes().split(b"\0")
    assert endpoint.encode() == flags[flags.index(b"--ui-codec-endpoint") + 1]
    with urllib.request.urlopen(f"{ui}/api/v1/settings", timeout=10) as response:
        assert endpoint == json.loads(response.read())["Codec"]["Endpoint"]
    status, _, encoded = post(f"{endpoint}/encode", {"payloads": [big_payload()]})
    assert 200 == status
    status, headers, decoded = post(
        f"{endpoint}/decode?preserveStorageRefs=true",
        encoded,
        Origin=ui,
        **{"X-Namespace": "default"},
    )
    assert (200, ui) == (status, headers.get("Access-Control-Allow-Origin"))
    assert [big_payload()] == decoded["payloads"]
    codec_base = f"http://127.0.0.1:{record['codec_port']}"
    assert 401 == post(f"{codec_base}/decode", encoded)[0]
    assert 403 == post(f"{endpoint}/decode", encoded, Origin="http://localhost:9999")[0]
    config_file = Path(cli_env["PEE_STATE_DIR"]) / "temporal.toml"
    # the SDK's reader agrees (TEMPORAL_CONFIG_FILE=this file works for starter.py too)
    profile = ClientConfigProfile.load(config_source=config_file, disable_env=True)
    assert f"127.0.0.1:{record['port']}" == profile.address
    assert f'[profile.default.codec]\nendpoint = "{endpoint}"' in config_file.read_text()
    for secret in (config_file, Path(cli_env["PEE_STATE_DIR"]) / "server.json"):
        assert 0o600 == stat.S_IMODE(secret.stat().st_mode), secret
    assert "codec:" in starter(cli_env, "server", "status").stdout
    stopped = starter(cli_env, "server", "stop")
    assert 0 == stopped.returncode, stopped.stdout + stopped.stderr
    assert not process_alive(record["codec_pid"])
    assert not port_open("127.0.0.1", record["codec_port"])
    assert not config_file.exists()


def test_start_after_a_killed_dev_server_stops_the_stale_codec_server(
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    """The dev server SIGKILLed (no `server stop`): the next `server start` stops the codec
    server its record names, and the new one answers with a new token."""
    cli_env["PEE_CODEC_PORT"] = str(free_port())
    assert 0 == starter(cli_env, "server", "start").returncode
    old = record_of(cli_env)
    os.kill(old["pid"], signal.SIGKILL)
    assert process_alive(old["codec_pid"])
    started = starter(cli_env, "server", "start")
    assert 0 == started.returncode, started.stdout + started.stderr
    new = record_of(cli_env)
    assert not process_alive(old["codec_pid"])
    assert new["codec_token"] != old["codec_token"]
    # the old port was freed, so the new codec server got it back
    assert old["codec_port"] == new["codec_port"]
    endpoint = f"http://127.0.0.1:{new['codec_port']}/{new['codec_token']}"
    assert 200 == post(f"{endpoint}/encode", {"payloads": [big_payload()]})[0]
    assert (
        403
        == post(
            f"http://127.0.0.1:{new['codec_port']}/{old['codec_token']}/encode", {"payloads": []}
        )[0]
    )
    assert 0 == starter(cli_env, "server", "stop").returncode
    assert not process_alive(new["codec_pid"])


def test_a_headless_server_starts_no_codec_server(cli_env: dict[str, str]) -> None:  # noqa: F811
    """--headless: no Web UI, so no codec server and no codec port in server.json; the CLI's
    temporal.toml has the address only."""
    started = starter(cli_env, "server", "start", "--headless")
    assert 0 == started.returncode, started.stdout + started.stderr
    record = record_of(cli_env)
    assert (None, None, None) == (record["codec_pid"], record["codec_port"], record["codec_token"])
    config_file = Path(cli_env["PEE_STATE_DIR"]) / "temporal.toml"
    profile = ClientConfigProfile.load(config_source=config_file, disable_env=True)
    assert f"127.0.0.1:{record['port']}" == profile.address
    assert "codec" not in config_file.read_text()
    assert 0 == starter(cli_env, "server", "stop").returncode
