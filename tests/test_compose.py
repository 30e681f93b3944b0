"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine runs here): the
services, images, ports, health checks and start order, that every command parses with the
project's real argument parsers, and that the clients' environment resolves, through the same
pee.runtime.connection code as on a laptop, to the compose Temporal server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pee.cli import worker_command as worker
from pee.cli.main import build_parser
from pee.runtime import connection
from pee.runtime.connection import resolve_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CORE = ("postgresql", "temporal", "codec-server", "temporal-ui", "worker", "minio", "minio-bucket")
BUILT = ("codec-server", "worker", "starter")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR:-default}` / `${VAR}` with `env` (default: nothing set)."""
    env = env or {}

    def one(match: re.Match[str]) -> str:
        name, _sep, default = match.group(1).partition(":-")
        return env.get(name) or default

    return re.sub(r"\$\{([^}]+)\}", one, value)


def published(service: str) -> dict[int, int]:
    """container port -> host port."""
    ports = {}
    for spec in SERVICES[service].get("ports", []):
        host, _sep, inside = str(spec).rpartition(":")
        ports[int(inside)] = int(host)
    return ports


def environment(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    raw = SERVICES[service].get("environment") or {}
    return {key: interpolate(str(value), env) for key, value in raw.items()}


def test_core_services_use_the_expected_images() -> None:
    """PostgreSQL, Temporal with automatic schema set-up, the Web UI; the project's own image
    (built from ./Dockerfile) for the codec server, workers and starter."""
    assert set(CORE) <= set(SERVICES)
    assert SERVICES["postgresql"]["image"].startswith("postgres:")
    assert SERVICES["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert SERVICES["temporal-ui"]["image"].startswith("temporalio/ui:")
    for name in BUILT:
        assert "." == SERVICES[name]["build"], name
    assert (ROOT / "Dockerfile").is_file()


def test_every_core_service_has_a_health_check_or_waits_for_healthy_ones() -> None:
    """Start order: postgresql → temporal → (codec-server) → temporal-ui, workers; each
    dependency waited for with condition: service_healthy on a service that has a health
    check."""
    for name in ("postgresql", "temporal", "codec-server", "temporal-ui", "minio"):
        check = SERVICES[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check["retries"] >= 3, name
    expected = {
        "temporal": {"postgresql"},
        "temporal-ui": {"temporal", "codec-server"},
        "worker": {"temporal", "postgresql", "minio-bucket"},
        "starter": {"temporal", "postgresql", "minio-bucket"},
        "minio-bucket": {"minio"},
        "codec-server": {"minio-bucket"},
    }
    for name, dependencies in expected.items():
        depends = SERVICES[name]["depends_on"]
        assert dependencies == set(depends), name
        for dependency in dependencies:
            if dependency == "minio-bucket":
                # a job: waited for until it has created the bucket and exited
                condition = "service_completed_successfully"
            else:
                condition = "service_healthy"
                assert "healthcheck" in SERVICES[dependency], dependency
            assert condition == depends[dependency]["condition"], (name, dependency)


def test_temporal_server_is_wired_to_postgresql() -> None:
    env = environment("temporal")
    assert "postgres12" == env["DB"]
    assert "postgresql" == env["POSTGRES_SEEDS"]
    assert environment("postgresql")["POSTGRES_USER"] == env["POSTGRES_USER"]
    assert environment("postgresql")["POSTGRES_PASSWORD"] == env["POSTGRES_PWD"]
    assert {7233: 7233} == published("temporal")


def console_scripts() -> dict[str, str]:
    """pyproject's [project.scripts]: console script name -> its module:function."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+) = "([^"]+)"', section, re.MULTILINE))


def test_compose_commands_are_the_installed_console_scripts() -> None:
    """`pee` and `pee-worker` are the scripts `pip install` puts on the image's PATH, and they
    point at the parsers the tests below use (`pee` through its launcher, which hands every
    command but a fork-served `run` to pee.cli.main)."""
    assert "pee.cli.launch:entry" == console_scripts()["pee"]
    assert "pee.cli.worker_command:entry" == console_scripts()["pee-worker"]


def test_workers_are_replicated_and_run_pee_worker_with_its_real_options() -> None:
    """deploy.replicas > 1, and the command parses with pee-worker's own parser."""
    service = SERVICES["worker"]
    assert service["deploy"]["replicas"] >= 2
    command = service["command"]
    assert "pee-worker" == command[0]
    args = worker.parser().parse_args(command[1:])
    assert args.max_concurrent_activities is not None
    assert "ports" not in service  # replicas cannot share a host port


def test_codec_server_command_and_the_ui_agree_on_endpoint_and_origin() -> None:
    """The codec server runs `pee codec-server` (parsed by the real CLI parser) on the
    port the UI's TEMPORAL_CODEC_ENDPOINT names, allowing the UI's published origin."""
    command = SERVICES["codec-server"]["command"]
    assert "pee" == command[0]
    args = build_parser().parse_args(command[1:])
    assert "codec-server" == args.command
    assert "0.0.0.0" == args.host
    ui = environment("temporal-ui")
    assert (
        f"http://localhost:{published('codec-server')[args.port]}" == ui["TEMPORAL_CODEC_ENDPOINT"]
    )
    assert f"http://localhost:{published('temporal-ui')[8080]}" == args.cors_origin
    assert "temporal:7233" == ui["TEMPORAL_ADDRESS"]


def test_the_starter_service_runs_pee() -> None:
    service = SERVICES["starter"]
    assert ["pee"] == service["entrypoint"]
    assert "tools" in service["profiles"]
    build_parser().parse_args(["run", "plans/demo.yaml", "--no-worker"])


def test_client_environment_names_every_setting_runtime_connection_reads() -> None:
    """Workers and the starter get the very variables pee.runtime.connection documents."""
    names = {
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS",
        "TEMPORAL_PROFILE",
        "TEMPORAL_CONFIG_FILE",
        "PEE_TASK_QUEUE",
        *(
            setting[1]
            for setting in (
                connection.CA_SETTING,
                connection.CERT_SETTING,
                connection.KEY_SETTING,
                connection.SERVER_NAME_SETTING,
            )
        ),
    }
    for name in ("worker", "starter"):
        assert names <= set(SERVICES[name]["environment"]), name


def test_compose_environment_resolves_like_a_local_run() -> None:
    """Interpolated with nothing set, a worker's environment means plain text to temporal:7233
    in namespace default; with the TLS variables set it means mTLS with those files."""
    plain = resolve_settings(None, environment("worker"))
    assert ("temporal:7233", "default", False, None) == (
        plain.address,
        plain.namespace,
        plain.tls,
        plain.api_key,
    )
    host = {
        "TEMPORAL_ADDRESS": "cluster.example:7233",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": "/certs/ca.pem",
        "TEMPORAL_TLS_CLIENT_CERT_PATH": "/certs/client.pem",
        "TEMPORAL_TLS_CLIENT_KEY_PATH": "/certs/client-key.pem",
    }
    secure = resolve_settings(None, environment("worker", host))
    assert ("cluster.example:7233", True, Path("/certs/ca.pem"), Path("/certs/client.pem")) == (
        secure.address,
        secure.tls,
        secure.tls_ca,
        secure.tls_cert,
    )
    mounts = [interpolate(volume).split(":") for volume in SERVICES["worker"]["volumes"]]
    assert ["./certs", "/certs", "ro"] in mounts


@pytest.mark.parametrize("name", ["otel-collector", "jaeger"])
def test_tracing_services_are_an_optional_profile(name: str) -> None:
    assert ["tracing"] == SERVICES[name]["profiles"]


def test_clients_can_export_to_the_collector_which_forwards_to_jaeger() -> None:
    """The clients' OTEL_* variables are passed through, off unless set; the collector receives
    OTLP/HTTP on 4318 (src/pee/runtime/telemetry.py's default protocol) and forwards traces to
    Jaeger; the image has the otlp extra."""
    client = environment("worker")
    assert ("", "") == (client["OTEL_TRACES_EXPORTER"], client["OTEL_METRICS_EXPORTER"])
    assert "http://otel-collector:4318" == client["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert "RUN pip install '.[otlp]'" in (ROOT / "Dockerfile").read_text()
    assert "otlp = [" in (ROOT / "pyproject.toml").read_text()
    config = yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text())
    assert "0.0.0.0:4318" == config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert {4318: 4318, 4317: 4317} == published("otel-collector")
    pipeline = config["service"]["pipelines"]["traces"]
    assert (["otlp"], ["otlp/jaeger"]) == (pipeline["receivers"], pipeline["exporters"])
    assert "jaeger:4317" == config["exporters"]["otlp/jaeger"]["endpoint"]
    assert "true" == environment("jaeger")["COLLECTOR_OTLP_ENABLED"]


def test_dockerfile_installs_the_project_and_copies_every_package() -> None:
    """The package source (pyproject finds it under src/) is copied before `pip install`, which
    installs the console scripts the image runs."""
    text = (ROOT / "Dockerfile").read_text()
    install = text.index("RUN pip install")
    pyproject = (ROOT / "pyproject.toml").read_text()
    where = re.search(r"\[tool\.setuptools\.packages\.find\]\s*where = \[\"([^\"]+)\"\]", pyproject)
    assert where is not None and "src" == where.group(1)
    assert "COPY src src" in text[:install]
    assert 'CMD ["pee-worker"]' in text[install:]


# ---- the shared stores (issue 20): no shared disk --------------------------------------------


def test_workers_share_no_volume_but_the_certificates() -> None:
    """The former shared worker volume is gone: a worker mounts only ./certs, read-only."""
    for name in ("worker", "starter", "codec-server"):
        mounts = [interpolate(v).split(":") for v in SERVICES[name].get("volumes", [])]
        assert all(["./certs", "/certs", "ro"] == mount for mount in mounts), name
    assert "pee-data" not in (COMPOSE.get("volumes") or {})
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "PEE_CACHE_PATH" not in dockerfile and "PEE_ARTIFACT_DIR" not in dockerfile


def test_the_caches_use_their_own_database_in_the_compose_postgresql() -> None:
    """PEE_CACHE_URL parses (pee.stores.urls) to PostgreSQL at the postgresql service, in the
    database and as the role deploy/postgres-init.sql creates, mounted where the image runs it."""
    from urllib.parse import urlsplit

    from pee.stores.urls import Dialect, parse

    url = parse(environment("worker")["PEE_CACHE_URL"])
    assert Dialect.POSTGRESQL is url.dialect
    parts = urlsplit(url.url)
    assert ("postgresql", 5432) == (parts.hostname, parts.port)
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert f"CREATE ROLE {parts.username} LOGIN PASSWORD '{parts.password}';" in init
    database = parts.path.lstrip("/")
    assert f"CREATE DATABASE {database} OWNER {parts.username};" in init
    assert database != environment("temporal")["POSTGRES_USER"]  # not Temporal's own
    mounts = [v.split(":") for v in SERVICES["postgresql"]["volumes"]]
    assert ["./deploy/postgres-init.sql", "/docker-entrypoint-initdb.d/pee.sql", "ro"] in mounts


def test_payloads_go_to_the_minio_bucket_the_job_creates(monkeypatch: pytest.MonkeyPatch) -> None:
    """PEE_ARTIFACT_URL's bucket is the one minio-bucket creates; AWS_ENDPOINT_URL is the minio
    service's API port; the credentials are MinIO's root ones; the codec server gets the same
    settings as the workers (it reads the same payloads)."""
    from pee.stores.blobs import s3_settings

    worker = environment("worker")
    for name, value in worker.items():
        monkeypatch.setenv(name, value)
    settings = s3_settings()
    assert settings is not None and "http://minio:9000" == settings.endpoint
    job = SERVICES["minio-bucket"]
    assert f"pee/{settings.bucket}" == job["entrypoint"][-1]
    assert job["entrypoint"][:3] == ["mc", "mb", "--ignore-existing"]
    assert "@minio:9000" in interpolate(job["environment"]["MC_HOST_pee"])
    minio = environment("minio")
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == (
        worker["AWS_ACCESS_KEY_ID"],
        worker["AWS_SECRET_ACCESS_KEY"],
    )
    codec = environment("codec-server")
    for name in ("PEE_ARTIFACT_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "PEE_CACHE_URL"):
        assert worker[name] == codec[name], name
