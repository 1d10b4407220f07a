"""Every notebook stays thin (no def/class), and every exploration notebook and dashboard runs top to
bottom with nbval on a fresh demo lake."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_SOURCES = sorted((ROOT / "notebooks").glob("*.py")) + sorted((ROOT / "dashboards").glob("*.ipynb"))
NBVAL_TARGETS = sorted((ROOT / "notebooks").glob("9*_*.py")) + sorted((ROOT / "dashboards").glob("*.ipynb"))


def definitions(notebook: nbformat.NotebookNode) -> list[str]:
    """`def`/`class` statements in the notebook's code cells (magics turned into Python first)."""
    found = []
    transform = TransformerManager().transform_cell
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse(transform(cell.source))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.append(f"cell {index}: {type(node).__name__} {node.name}")
    return found


def test_there_are_notebooks_to_check() -> None:
    names = {p.name for p in NBVAL_TARGETS}
    assert {
        "91_tour_of_the_lake.py",
        "92_time_travel.py",
        "93_branch_development.py",
        "94_cgm_analysis.py",
        "glucose_overview.ipynb",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOK_SOURCES, ids=lambda p: p.name)
def test_notebook_defines_no_functions_or_classes(path: Path) -> None:
    assert definitions(jupytext.read(path)) == []


def test_the_check_finds_definitions_behind_magics() -> None:
    notebook = jupytext.reads(
        "# %%\n%load_ext workbench.magic\nx = 1\n\n# %%\nclass A:\n    def f(self):\n        return 1\n",
        fmt="py:percent",
    )
    assert definitions(notebook) == ["cell 1: ClassDef A", "cell 1: FunctionDef f"]


def test_dashboards_are_committed_without_outputs() -> None:
    for path in (ROOT / "dashboards").glob("*.ipynb"):
        cells = nbformat.read(path, as_version=4).cells
        assert all(not c.get("outputs") for c in cells if c.cell_type == "code"), path.name


@pytest.fixture(scope="module")
def nbval_runs(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """nbval (lax mode) on every target, run concurrently (one pytest process per notebook):
    every cell must run; cells marked NBVAL_CHECK_OUTPUT must match. Name -> (exit code, output)."""
    folder = tmp_path_factory.mktemp("nbval")
    procs = {}
    for path in NBVAL_TARGETS:
        target = folder / f"{path.stem}.ipynb"
        if path.suffix == ".py":
            jupytext.write(jupytext.read(path), target, fmt="ipynb")
        else:
            shutil.copy(path, target)
        args = [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-current-env",
            "--nbval-cell-timeout=300",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(folder),
            str(target),
        ]
        procs[path.name] = subprocess.Popen(
            args, cwd=folder, env=demo_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    results = {}
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=900)
        results[name] = (proc.returncode, output)
    return results


@pytest.mark.parametrize("path", NBVAL_TARGETS, ids=lambda p: p.name)
def test_notebook_runs_with_nbval(path: Path, nbval_runs: dict[str, tuple[int, str]]) -> None:
    returncode, output = nbval_runs[path.name]
    assert returncode == 0, output[-8000:]
    assert " passed" in output and "failed" not in output
