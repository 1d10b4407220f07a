"""environment.yml (conda users) must list exactly the runtime dependencies of pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pins = [d for d in env["dependencies"] if isinstance(d, str)]
    assert f"python={project['requires-python'].split(',')[0].removeprefix('>=')}" in conda_pins
    listed = sorted(p for p in pip_section if not p.startswith("-e"))
    assert listed == sorted(project["dependencies"]), "environment.yml and pyproject.toml disagree"
    assert "-e ." in pip_section


def test_lock_pins_every_dependency() -> None:
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    pinned = {line.split("==")[0].lower() for line in lock if "==" in line and not line.startswith("#")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name = dep.split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower()
        assert name in pinned, f"{name} is not pinned in requirements.lock (run `make lock`)"
    assert any(line.startswith("dbt-core==1.11.") for line in lock), "dbt-core must stay below 1.12"
