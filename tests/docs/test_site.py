"""The documentation site builds strictly (any broken link fails), with the generated CLI reference,
metric definitions, Python API and the dbt docs inside, and works offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench.docs.build import DocsError, build_site

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # dbt docs generate and a full mkdocs build


@pytest.fixture(scope="module")
def site(demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from workbench.settings import load_settings

    settings = load_settings(home=demo_home, profile="embedded", warehouse=None, postgres_url=None)
    return build_site(
        ROOT,
        strict=True,
        dbt=True,
        site_dir=tmp_path_factory.mktemp("site"),
        settings=settings,
        echo=lambda _: None,
    )


def test_site_has_every_section(site: Path) -> None:
    for page in ("index.html", "getting-started.html", "concepts.html", "how-to/add-a-site.html",
                 "how-to/backfill.html", "how-to/branches.html", "how-to/time-travel.html", "how-to/publish.html",
                 "how-to/schedule.html", "how-to/api.html", "reference/http-api.html", "profiles.html",
                 "operations.html", "architecture.html"):  # fmt: skip
        assert (site / page).is_file(), page
    assert "write-audit-publish" in (site / "concepts.html").read_text().lower()


def test_generated_references(site: Path) -> None:
    from typer.main import get_command

    from workbench.cli import app

    cli = (site / "reference" / "cli.html").read_text()
    for name in get_command(app).commands:  # type: ignore[attr-defined]
        assert f"cascade {name}" in cli, name
    metrics = (site / "reference" / "metrics.html").read_text()
    assert "mrt_glucose_daily_metrics" in metrics and "fct_glucose_readings" in metrics
    assert "Glucose Management Indicator" in metrics  # a {% docs %} block resolved into the table
    assert "{{" not in metrics
    python_api = (site / "reference" / "python-api.html").read_text()
    assert "Lakehouse" in python_api and "create_token" in python_api
    assert (site / "dbt" / "index.html").is_file() and (site / "dbt" / "manifest.json").is_file()


def test_site_needs_no_network(site: Path) -> None:
    for page in site.rglob("*.html"):
        if page.parent.name == "dbt":
            continue  # dbt's own docs page (one self-contained file)
        text = page.read_text()
        assert "fonts.googleapis" not in text and "cdn.jsdelivr" not in text, page


def test_a_broken_link_fails_the_strict_build(site: Path, tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(ROOT / "transforms" / "models", root / "transforms" / "models")
    (root / "workbench").symlink_to(ROOT / "workbench")  # mkdocstrings reads the package
    with (root / "docs" / "profiles.md").open("a") as page:
        page.write("\nSee [the missing page](no-such-page.md).\n")
    warnings: list[str] = []
    with pytest.raises(DocsError, match="strict"):
        build_site(root, strict=True, dbt=False, site_dir=tmp_path / "site", echo=warnings.append)
    assert any("no-such-page.md" in w for w in warnings)
