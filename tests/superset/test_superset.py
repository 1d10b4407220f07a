"""Superset as Cascade runs it: private files, the dashboards bundle imported without drift and
idempotently, and chart data served by Superset's chart-data API equal to the published marts."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

import httpx
import psycopg
import pytest

from tests.superset.helpers import PASSWORD
from workbench.publish.postgres import reader_url
from workbench.settings import Settings
from workbench.superset import server
from workbench.superset.bundle import (
    URI_PLACEHOLDER,
    SupersetApiError,
    SupersetClient,
    bundle_files,
    client_for,
    dumps,
    export_dashboards,
    import_dashboards,
)

pytestmark = pytest.mark.slow


def test_server_is_private_and_asks_for_a_login(superset: Settings) -> None:
    status = server.status(superset)
    assert status.running and status.url and status.url.startswith("http://127.0.0.1:")
    folder = server.superset_dir(superset)
    assert folder.stat().st_mode & 0o077 == 0
    for name in ("secret_key", "superset_config.py", "superset.db"):
        assert (folder / name).stat().st_mode & 0o077 == 0, name
    assert not (folder / "admin-password").exists()  # the password came from the settings
    answer = httpx.get(status.url + "api/v1/dashboard/", timeout=30)
    assert answer.status_code == 401
    with pytest.raises(SupersetApiError, match="login as admin failed"):
        SupersetClient(status.url, "admin", PASSWORD + "-wrong")


def test_bundle_has_no_secrets() -> None:
    files = bundle_files()
    databases = [c for n, c in files.items() if n.startswith("databases/")]
    assert databases and all(c["sqlalchemy_uri"] == URI_PLACEHOLDER for c in databases)
    text = dumps(files).lower()
    assert "password" not in text and "secret" not in text


def _drift(got: Any, want: Any, path: str = "") -> list[str]:
    """Where two YAML documents differ (paths), for a readable failure."""
    if isinstance(got, dict) and isinstance(want, dict):
        return [
            d for k in sorted(set(got) | set(want), key=str) for d in _drift(got.get(k), want.get(k), f"{path}/{k}")
        ]
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True)) for d in _drift(g, w, f"{path}[{i}]")]
    return (
        []
        if got == want
        else [f"{path}: {json.dumps(want, default=str)[:200]} -> {json.dumps(got, default=str)[:200]}"]
    )


def test_export_equals_the_bundle_and_reimport_changes_nothing(superset: Settings) -> None:
    assert not _drift(export_dashboards(superset), bundle_files())
    client = client_for(superset)
    try:
        before = {r: client.list(r) for r in ("dashboard", "chart", "dataset", "database")}
    finally:
        client.close()
    import_dashboards(superset)
    server.up(superset)  # `up` on a running server only re-imports
    client = client_for(superset)
    try:
        after = {r: client.list(r) for r in ("dashboard", "chart", "dataset", "database")}
    finally:
        client.close()
    for resource in before:
        ids = lambda rows: sorted((row["id"], row.get("uuid")) for row in rows)  # noqa: E731
        assert ids(after[resource]) == ids(before[resource]), resource
    assert not _drift(export_dashboards(superset), bundle_files())


def test_reimport_puts_back_what_was_edited_in_superset(superset: Settings) -> None:
    """The bundle is the truth: a chart edited in Superset is restored by the next import (`up`)."""
    client = client_for(superset)
    try:
        chart = next(c for c in client.list("chart") if c["slice_name"] == "Daily statistics")
        answer = client.http.put(f"/api/v1/chart/{chart['id']}", json={"slice_name": "edited by hand"})
        assert answer.status_code == 200, answer.text
    finally:
        client.close()
    assert _drift(export_dashboards(superset), bundle_files())  # the edit shows as drift
    import_dashboards(superset)
    assert not _drift(export_dashboards(superset), bundle_files())


# ---- chart data == marts -------------------------------------------------------------------------
def _expressions() -> dict[tuple[str, str], str]:
    """Calculated columns of the bundle's datasets: (table, column) -> SQL expression."""
    out = {}
    for name, content in bundle_files().items():
        if name.startswith("datasets/"):
            for column in content["columns"]:
                if column.get("expression"):
                    out[(content["table_name"], column["column_name"])] = column["expression"]
    return out


def _query(params: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """(columns, metrics, filters) of a chart, as its visualisation asks Superset for them."""
    if params["viz_type"] == "table" and params.get("query_mode") == "raw":
        columns, metrics = list(params["all_columns"]), []
    elif params["viz_type"] == "pivot_table_v2":
        columns, metrics = params["groupbyRows"] + params["groupbyColumns"], params["metrics"]
    else:
        columns, metrics = [params["x_axis"], *params.get("groupby", [])], params["metrics"]
    filters = [
        {"col": f["subject"], "op": f["operator"], "val": f["comparator"]}
        for f in params.get("adhoc_filters", [])
        if f["operator"] != "TEMPORAL_RANGE"
    ]
    return columns, metrics, filters


def _where(filters: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """The charts' simple filters as SQL with bound values (every operator the bundle uses)."""
    parts, values = ["true"], []
    for f in filters:
        if f["op"] == "==":
            parts.append(f'"{f["col"]}" = %s')
            values.append(f["val"])
        elif f["op"] == "IN":
            parts.append(f'"{f["col"]}" = any(%s)')
            values.append(list(f["val"]))
        else:
            raise AssertionError(f"the test does not know the filter operator {f['op']!r}")
    return " and ".join(parts), values


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def test_chart_data_equals_the_marts(superset: Settings) -> None:
    client = client_for(superset)
    expressions = _expressions()
    try:
        datasets = {d["id"]: d["table_name"] for d in client.get("/api/v1/dataset/", q="(page_size:100)")["result"]}
        charts = client.list("chart")
        assert len(charts) == len([n for n in bundle_files() if n.startswith("charts/")])
        with psycopg.connect(reader_url(superset)) as con:
            for chart in charts:
                info = client.get(f"/api/v1/chart/{chart['id']}")["result"]
                table = datasets[info["datasource_id"]]
                columns, metrics, filters = _query(json.loads(info["params"]))
                answer = client.post(
                    "/api/v1/chart/data",
                    json={
                        "datasource": {"id": info["datasource_id"], "type": "table"},
                        "force": True,
                        "queries": [{"columns": columns, "metrics": metrics, "filters": filters, "row_limit": 100000}],
                        "result_format": "json",
                        "result_type": "full",
                    },
                )
                served = answer["result"][0]["data"]
                select = [f'{expressions.get((table, c), c)} as "{c}"' for c in columns]
                select += [f'{m["sqlExpression"]} as "{m["label"]}"' for m in metrics]
                where, values = _where(filters)
                group = f" group by {', '.join(str(i + 1) for i in range(len(columns)))}" if metrics else ""
                columns_sql = f"select {', '.join(select)} from marts.{table}".replace("%", "%%")  # "TIR %"
                cur = con.execute(f"{columns_sql} where {where}{group}", values)
                names = [d.name for d in cur.description]
                expected = [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]
                assert served, f"{chart['slice_name']}: no data"
                got = {tuple(str(r[c]) for c in columns): r for r in served}
                want = {tuple(str(r[c]) for c in columns): r for r in expected}
                assert got.keys() == want.keys(), chart["slice_name"]
                for k, row in want.items():
                    for name, value in row.items():
                        assert _same(got[k][name], value), (chart["slice_name"], k, name, got[k][name], value)
    finally:
        client.close()
