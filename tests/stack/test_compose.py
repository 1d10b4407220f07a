"""stack/compose.yaml without a Docker engine: valid against the Compose specification's schema, every
mounted file exists, and ports, databases and settings agree with the native launcher."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

from workbench.stack import launcher

STACK = Path(__file__).resolve().parents[2] / "stack"
COMPOSE = yaml.safe_load((STACK / "compose.yaml").read_text())


def test_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads((STACK / "schema" / "compose-spec.json").read_text())
    jsonschema.validate(COMPOSE, schema)


def test_a_broken_compose_file_is_rejected_by_the_schema() -> None:
    schema = json.loads((STACK / "schema" / "compose-spec.json").read_text())
    broken = {**COMPOSE, "services": {**COMPOSE["services"], "trino": {**COMPOSE["services"]["trino"], "ports": 8080}}}
    try:
        jsonschema.validate(broken, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("the schema accepted a service whose ports is not a list")


def test_every_mounted_file_exists_and_is_the_native_configuration() -> None:
    mounted = []
    for service in COMPOSE["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                path = (STACK / source).resolve()
                assert path.is_file(), f"{source} is mounted but does not exist"
                mounted.append(path.relative_to(STACK).as_posix())
    native = {"nessie/application.properties", "postgres/init.sql"} | {
        p.relative_to(STACK).as_posix() for p in (STACK / "trino" / "etc").rglob("*") if p.is_file()
    }
    assert native <= set(mounted), f"not shared with Compose: {sorted(native - set(mounted))}"


def _published(service: str) -> set[int]:
    ports = COMPOSE["services"][service].get("ports", [])
    for entry in ports:
        assert entry.startswith("127.0.0.1:"), f"{service} publishes {entry} beyond 127.0.0.1"
    return {int(p.split(":")[1]) for p in ports}


def test_ports_and_names_match_the_native_launcher() -> None:
    assert _published("s3") == {launcher.PORTS["s3"]}
    assert _published("nessie") == {launcher.PORTS["nessie"], launcher.PORTS["nessie-management"]}
    assert _published("trino") == {launcher.PORTS["trino"]}
    env = COMPOSE["x-stack-env"]
    assert env["CASCADE_STACK_BUCKET"] == launcher.BUCKET
    assert int(env["CASCADE_STACK_TRINO_PORT"]) == launcher.PORTS["trino"]
    assert int(env["CASCADE_STACK_NESSIE_PORT"]) == launcher.PORTS["nessie"]
    assert int(env["CASCADE_STACK_S3_PORT"]) == launcher.PORTS["s3"]
    assert COMPOSE["services"]["postgres"]["environment"]["POSTGRES_DB"] == launcher.PG_DATABASE
    assert COMPOSE["services"]["postgres"]["environment"]["POSTGRES_USER"] == launcher.PG_USER
    assert "nessie" in launcher.stack_databases()


def test_every_variable_the_configuration_reads_is_set_by_both_launchers(tmp_path: Path) -> None:
    used: set[str] = set()
    for path in [STACK / "nessie" / "application.properties", *(STACK / "trino" / "etc").rglob("*.*")]:
        used |= set(re.findall(r"\$\{(?:ENV:)?(CASCADE_STACK_[A-Z0-9_]+)", path.read_text()))
    compose = set(COMPOSE["x-stack-env"])
    native = set(launcher.service_env(launcher.StackHome(tmp_path), 5432))
    assert used <= compose, f"Compose does not set {sorted(used - compose)}"
    assert used <= native, f"the native launcher does not set {sorted(used - native)}"


def test_credentials_come_from_the_environment_only() -> None:
    for name, service in COMPOSE["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "ACCESS_KEY")):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", str(value)), f"{name}.{key} is not taken from .env"
