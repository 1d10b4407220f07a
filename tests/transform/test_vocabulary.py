"""One column vocabulary: a metric has one name in every mart, defined once (a `metric_<name>` doc
block in transforms/models/marts/_metric_definitions.md), and Python uses the same names."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from workbench import metrics
from workbench.viz import summary

MARTS = Path(__file__).resolve().parents[2] / "transforms" / "models" / "marts"
DOC_BLOCK = re.compile(r"{%\s*docs\s+metric_(\w+)\s*%}")
DOC_REF = re.compile(r"""doc\(["']metric_(\w+)["']\)""")


def _defined() -> set[str]:
    return set(DOC_BLOCK.findall((MARTS / "_metric_definitions.md").read_text()))


def _columns() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(MARTS.glob("*.yml")):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            for column in model.get("columns", []):
                out.append((model["name"], column["name"], str(column.get("description", ""))))
    return out


def test_every_metric_column_uses_the_definition_of_its_own_name() -> None:
    defined = _defined()
    problems = []
    for model, name, description in _columns():
        refs = DOC_REF.findall(description)
        if name in defined and refs != [name]:
            problems.append(f"{model}.{name} does not use doc('metric_{name}')")
        for ref in refs:
            if ref != name:
                problems.append(f"{model}.{name} is described by metric_{ref}: one metric, one name")
    assert not problems, problems


def test_no_mart_keeps_the_seed_names() -> None:
    names = {name for _, name, _ in _columns()}
    assert not names & {"avg_glucose"}
    overview = {name for model, name, _ in _columns() if model == "mrt_glucose_overview"}
    assert {"mean_glucose", "pct_below_70", "pct_in_range", "pct_above_180"} <= overview
    assert not overview & {"pct_low", "pct_high"}  # those mean 54–69 and 181–250 everywhere


def test_python_names_are_the_mart_names() -> None:
    defined = _defined()
    for cls in (metrics.GlucoseSummary, summary.PeriodSummary):
        fields = {f.name for f in dataclasses.fields(cls)} - {"patient_id", "start", "end", "days"}
        assert fields <= defined, fields - defined
    assert {r.column for r in summary.RANGES} <= defined
