"""docker-compose.yml: the services, their health checks and start order; `config` validates."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {
    "migrate", "api", "worker-chat", "worker-ingest", "beat", "flower", "redis", "postgres",
    "qdrant",
}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "migrate":
            continue
        check = service.get("healthcheck")
        assert check, name
        assert check.get("test"), name
        assert not check.get("disable"), name


def test_start_order_waits_for_health_and_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api_deps = services["api"]["depends_on"]
    assert api_deps["migrate"] == {"condition": "service_completed_successfully"}
    for dep in ("redis", "postgres", "qdrant"):
        assert api_deps[dep] == {"condition": "service_healthy"}
    for worker in ("worker-chat", "worker-ingest"):
        assert services[worker]["depends_on"] == api_deps
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["command"] == ["bookchat", "migrate"]
    for name in ("beat", "flower"):
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_workers_scale_and_serve_their_own_queue(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, queue in (("worker-chat", "chat"), ("worker-ingest", "ingest")):
        # The shipped command, so the pool and its size are `bookchat worker`'s defaults
        # (BOOKCHAT_CHAT_CONCURRENCY), the same as the Procfile's and `bookchat dev`'s.
        assert services[name]["command"] == ["bookchat", "worker", "--queues", queue]
        assert services[name]["environment"]["BOOKCHAT_CELERY_TASK_EVENTS"] == "true"  # Flower
        assert services[name]["environment"]["QDRANT_URL"]  # each queue its own worker
        # --scale needs no fixed name and no host port.
        assert "container_name" not in services[name]
        assert "ports" not in services[name]


def test_state_is_on_volumes_and_redis_keeps_an_aof(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == (
        "yes"
    )
    for name, mount in (
        ("redis", "/data"),
        ("postgres", "/var/lib/postgresql/data"),
        ("qdrant", "/qdrant/storage"),
    ):
        volume = services[name]["volumes"][0].split(":")
        assert volume[1] == mount, name
        assert volume[0] in compose["volumes"], name


def test_flower_has_basic_auth_and_never_an_open_api(compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert "FLOWER_UNAUTHENTICATED_API" not in COMPOSE.read_text().split("Never set")[0]
    assert "FLOWER_UNAUTHENTICATED_API" not in flower["environment"]


def test_env_comes_from_dotenv(compose: dict[str, Any]) -> None:
    for name in ("api", "worker-chat", "worker-ingest", "beat", "flower", "migrate"):
        assert compose["services"][name]["env_file"] == ".env"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_config_validates(tmp_path: Path) -> None:
    # Validated with .env.example as the .env (a real .env may hold anything).
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        ["docker-compose", "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def _procfile_command(name: str, env: dict[str, str]) -> list[str]:
    """The argv of a Procfile process as honcho runs it (through /bin/sh, with `env`)."""
    procfile = (ROOT / "Procfile").read_text()
    (command,) = (
        line.split(":", 1)[1].strip()
        for line in procfile.splitlines()
        if line.startswith(f"{name}:")
    )
    shown = subprocess.run(
        ["/bin/sh", "-c", f"printf '%s\\n' {command}"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout.splitlines()


def test_procfile_flower_listens_on_loopback_unless_told(compose: dict[str, Any]) -> None:
    argv = _procfile_command("flower", {})
    assert argv[:4] == ["celery", "-A", "worker.celery_app", "flower"]
    assert "--address=127.0.0.1" in argv
    assert "--port=5555" in argv
    argv = _procfile_command("flower", {"FLOWER_ADDRESS": "0.0.0.0", "FLOWER_PORT": "5601"})
    assert "--address=0.0.0.0" in argv
    assert "--port=5601" in argv
    # Compose publishes the container's port: there Flower listens on every interface of its
    # container, whatever FLOWER_ADDRESS .env holds for the Procfile.
    assert "--address=0.0.0.0" in compose["services"]["flower"]["command"]
