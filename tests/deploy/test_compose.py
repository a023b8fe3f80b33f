"""The production topology, checked as far as a machine without a Docker engine can."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.attributes import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_part_of_the_topology_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgresql", "temporal-schema", "temporal", "setup", "codec",
                                        "temporal-ui", "worker"}
    services = compose["services"]
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    assert not any("auto-setup" in s.get("image", "") for s in services.values())
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services["worker"]["deploy"]["replicas"] == 2 and services["worker"]["image"] == "complaints:latest"
    assert services["setup"]["build"] == "."
    assert "TEMPORAL_CODEC_ENDPOINT" in services["temporal-ui"]["environment"]
    assert services["codec"]["command"] == ["python", "-m", "codec.server"]


def test_the_workers_use_the_application_role_not_the_owner(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]["environment"]
    assert worker["DATABASE_URL"].startswith("postgresql://complaints_app:") and "DATABASE_ADMIN_URL" not in worker
    assert compose["services"]["setup"]["environment"]["DATABASE_ADMIN_URL"].startswith(
        "postgresql://complaints_owner:")


def test_every_secret_comes_from_an_uncommitted_env_file_with_a_committed_example() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", (ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^(\w+)=", example, flags=re.M))
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"
    assert {"COMPLAINTS_MASTER_KEY", "COMPLAINTS_CODEC_KEYS", "COMPLAINTS_CODEC_TOKEN", "COMPLAINTS_SEAL_KEY"} <= documented
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked.strip() == ""


def test_the_setup_job_registers_exactly_the_workflows_search_attributes() -> None:
    script = (ROOT / "deploy" / "setup.sh").read_text()
    registered = dict(re.findall(r"(\w+)=(Keyword|Datetime|Bool|Int|Double|Text|KeywordList)\b", script))
    expected = {k.name: k.indexed_value_type.name.title().replace("_", "") for k in SEARCH_ATTRIBUTES}
    assert registered == expected
    assert "complaints db migrate" in script


def test_the_image_installs_with_the_makefiles_own_steps() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^RUN make runtime ", dockerfile, flags=re.M)
    runtime = re.search(r"^runtime: venv\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert runtime and "$(PIP) ." in runtime.group(1)
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.M))
    packages = set(re.findall(r'"(\w+)"', re.search(r"packages = \[(.*?)\]",
                                                   (ROOT / "pyproject.toml").read_text(), re.S).group(1)))
    assert {p.split(".")[0] for p in packages} <= copied


def compose_client() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


@pytest.mark.skipif(compose_client() is None, reason="no docker-compose client on this machine (the structural "
                                                     "checks above still ran); CI installs Debian's docker-compose")
def test_docker_compose_itself_accepts_the_file(tmp_path: Path) -> None:
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    client = compose_client()
    assert client is not None
    done = subprocess.run([*client, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (tmp_path / "docker-compose.yml").write_text((tmp_path / "docker-compose.yml").read_text().replace(
        "condition: service_healthy", "condition: service_sleepy", 1))
    broken = subprocess.run([*client, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0  # and the check can fail: a wrong condition is caught
