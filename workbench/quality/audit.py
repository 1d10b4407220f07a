"""The audit of write-audit-publish: checks on the `dev` branch before it may be promoted to `main`.

Each check returns pass / warn / fail with a plain detail. Any `fail` blocks the promotion:
`promote()` refuses to merge and `main` stays untouched. The report is saved as JSON beside the
run's executed notebooks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from workbench.errors import CascadeError
from workbench.lakehouse import Lakehouse
from workbench.settings import DEV_BRANCH, MAIN_BRANCH
from workbench.sql.quoting import quote_ident, quote_literal, quote_table

Status = Literal["pass", "warn", "fail"]

FACT = "silver.fct_glucose_readings"
ENTRIES = "raw.glucose_entries"
REJECTS = "raw.glucose_entries_rejects"
PATIENTS = "raw.patients"
# (table, column) pairs that are percentages
PERCENT_COLUMNS = (
    ("marts.mrt_glucose_overview", ("pct_below_70", "pct_in_range", "pct_above_180")),
    (
        "marts.mrt_glucose_daily_metrics",
        ("pct_very_low", "pct_low", "pct_in_range", "pct_high", "pct_very_high", "pct_readings_present"),
    ),
)


class AuditFailedError(CascadeError):
    """The audit found failures; nothing was promoted."""


@dataclass(frozen=True)
class Thresholds:
    """Audit limits (pipeline parameters in env.yaml)."""

    max_staleness_hours: float = 24.0  # newest reading per patient must be at most this old
    max_gap_hours: float = 6.0  # gaps longer than this in newly arrived data ...
    gap_severity: Status = "warn"  # ... are a warning (or a failure)
    max_row_drop_pct: float = 0.0  # a table on dev may not have fewer rows than on main by more than this
    glucose_min: float = 20.0
    glucose_max: float = 600.0
    max_rejects_pct: float = 5.0  # share of newly ingested records quarantined
    required_tables: tuple[str, ...] = (ENTRIES, FACT, "marts.mrt_glucose_overview")

    @staticmethod
    def site_keys() -> tuple[str, ...]:
        """Thresholds a site may set for itself (`audit:` of a site in sites.yaml)."""
        return ("max_staleness_hours", "max_gap_hours", "gap_severity")

    def for_site(self, overrides: dict[str, Any] | None) -> Thresholds:
        """These limits with a site's own overrides applied."""
        if not overrides:
            return self
        from dataclasses import replace

        return replace(self, **{k: v for k, v in overrides.items() if k in self.site_keys()})

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Thresholds:
        params = dict(params or {})
        if "required_tables" in params:
            params["required_tables"] = tuple(params["required_tables"])
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise CascadeError(f"unknown audit threshold(s): {', '.join(sorted(unknown))}")
        return cls(**params)


@dataclass(frozen=True)
class Check:
    """One audit check."""

    name: str
    status: Status
    detail: str
    value: float | None = None
    threshold: float | None = None


@dataclass
class AuditReport:
    """All checks of one audit."""

    branch: str
    baseline: str
    checked_at: str
    commit_id: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        return (
            f"audit {verdict} on {self.branch}@{self.commit_id}: {len(self.checks)} checks, "
            f"{len(self.failed)} failed, {len(self.warnings)} warnings"
        )

    def note(self) -> str | None:
        """The warnings in one line (kept in the run history), or None."""
        if not self.warnings:
            return None
        return f"{len(self.warnings)} warning(s): " + "; ".join(f"{c.name}: {c.detail}" for c in self.warnings)[:1500]

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [asdict(c) for c in self.checks], columns=["name", "status", "detail", "value", "threshold"]
        )

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {**asdict(self), "passed": self.passed, "note": self.note()}
        path.write_text(json.dumps(payload, indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> AuditReport:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise AuditFailedError(f"cannot read the audit report {path}: {exc}; run the audit task first") from None
        checks = [Check(**c) for c in data.pop("checks")]
        data.pop("passed", None)
        data.pop("note", None)
        return cls(**data, checks=checks)


def _scalar(lh: Lakehouse, sql: str) -> Any:
    frame = lh.sql(sql)
    return None if frame.empty else frame.iloc[0, 0]


def _count(lh: Lakehouse, table: str) -> int:
    return int(_scalar(lh, f"select count(*) from {quote_table(table)}") or 0)


def check_required_tables(dev: Lakehouse, t: Thresholds) -> list[Check]:
    tables = set(dev.tables())
    missing = [name for name in t.required_tables if name not in tables]
    if missing:
        return [Check("required tables", "fail", f"missing on {dev.ref}: {', '.join(missing)}")]
    return [Check("required tables", "pass", f"{len(t.required_tables)} present")]


@dataclass(frozen=True)
class SourceState:
    """What one site's source had when the run asked it (from the ingest report)."""

    site_id: str
    patient_id: str
    source_time: datetime | None  # the source's clock
    new_rows: int = 0
    audit: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_ingest_report(cls, path: Path | str | None) -> list[SourceState]:
        """The sites of an ingest report (`IngestReport.save`); empty when there is none."""
        if path is None or not Path(path).is_file():
            return []
        data = json.loads(Path(path).read_text())
        out = []
        for site in data.get("sites", []):
            stamp = site.get("source_time")
            out.append(
                cls(
                    site_id=str(site["site_id"]),
                    patient_id=str(site["patient_id"]),
                    source_time=datetime.fromisoformat(stamp) if stamp else None,
                    new_rows=int(site.get("new", 0)) + int(site.get("treatments_new", 0)),
                    audit=dict(site.get("audit") or {}),
                )
            )
        return out


def check_freshness(
    dev: Lakehouse,
    t: Thresholds,
    now: datetime,
    sources: list[SourceState] | None = None,
    backfill: bool = False,
) -> list[Check]:
    """Per site: how long before the source's own clock its newest reading is. A site that stopped
    uploading is a warning (it never holds back other patients' data); in a backfill run old data
    is expected and only reported."""
    if ENTRIES not in dev.tables():
        return []
    columns = set(dev.table(ENTRIES).schema().column_names)
    key = "site_id" if "site_id" in columns else "patient_id"
    frame = dev.sql(f"select {key} as site, max(date) as newest_ms from {quote_table(ENTRIES)} group by 1 order by 1")
    known = {s.site_id: s for s in sources or []}
    checks = []
    for row in frame.itertuples(index=False):
        source = known.get(str(row.site))
        clock = source.source_time if source is not None and source.source_time is not None else now
        limits = t.for_site(source.audit if source is not None else None)
        age_h = (clock.timestamp() * 1000 - float(row.newest_ms)) / 3_600_000
        where = "the source's clock" if source is not None and source.source_time is not None else "now"
        if backfill:
            status: Status = "pass"
            detail = f"backfill: newest reading {age_h:.1f} h before {where} (not judged)"
        elif age_h <= limits.max_staleness_hours:
            status, detail = (
                "pass",
                f"newest reading {age_h:.1f} h before {where} (limit {limits.max_staleness_hours:g} h)",
            )
        else:
            status = "warn"
            detail = (
                f"stale: {row.site} has sent nothing for {age_h:.1f} h before {where} "
                f"(limit {limits.max_staleness_hours:g} h); other sites are promoted as usual"
            )
        checks.append(Check(f"freshness {row.site}", status, detail, round(age_h, 2), limits.max_staleness_hours))
    return checks


def _recut_patients(dev: Lakehouse, main: Lakehouse) -> list[str]:
    """Patients whose zone (raw.patients, from sites.yaml) was corrected since `main`."""
    if PATIENTS not in dev.tables() or PATIENTS not in main.tables():
        return []
    query = f"select patient_id, time_zone from {quote_table(PATIENTS)}"
    before = dict(main.sql(query).itertuples(index=False, name=None))
    now = dict(dev.sql(query).itertuples(index=False, name=None))
    return sorted(str(p) for p, zone in now.items() if p in before and before[p] != zone)


def check_row_counts(dev: Lakehouse, main: Lakehouse, t: Thresholds) -> list[Check]:
    """No table may lose rows against `main` (beyond `max_row_drop_pct`). A patient whose zone was
    corrected has their days and weeks cut anew, so a table may hold fewer of their rows: a drop
    within those patients is a warning, not a failure (the other patients' rows are still checked)."""
    checks = []
    main_tables = set(main.tables())
    recut = _recut_patients(dev, main)
    for table in dev.tables():
        if table not in main_tables or table.startswith("ops."):
            continue
        now_rows, before = _count(dev, table), _count(main, table)
        floor = before * (1 - t.max_row_drop_pct / 100)
        status: Status = "pass" if now_rows >= floor else "fail"
        detail = f"{now_rows} rows on {dev.ref}, {before} on {main.ref}"
        if status == "fail" and recut and "patient_id" in dev.sql(f"select * from {quote_table(table)} limit 0"):
            others = "patient_id not in (" + ", ".join(quote_literal(p) for p in recut) + ")"
            if _count_where(dev, table, others) >= _count_where(main, table, others) * (1 - t.max_row_drop_pct / 100):
                status = "warn"
                detail += f"; the rows dropped are of re-cut patients (zone corrected: {', '.join(recut)})"
        checks.append(Check(f"row count {table}", status, detail, float(now_rows), float(before)))
    return checks


def check_gaps(
    dev: Lakehouse, main: Lakehouse, t: Thresholds, site_thresholds: dict[str, Thresholds] | None = None
) -> list[Check]:
    """Gaps between consecutive readings in data newer than what `main` already has, per patient,
    including the gap between `main`'s last reading and the first new one (the boundary)."""
    if FACT not in dev.tables():
        return []
    boundaries: dict[str, Any] = {}
    if FACT in main.tables():
        frame = main.sql(
            f"select patient_id, max(reading_ts_utc) as since from {quote_table(FACT)} group by patient_id"
        )
        boundaries = {str(r.patient_id): r.since for r in frame.itertuples(index=False) if _present(r.since)}
    # each patient from its own boundary on (inclusive: main's last reading is the first lag partner);
    # SQL both engines speak (DuckDB, Trino): naive UTC timestamp literals, date_diff in milliseconds
    since = _FLOOR
    if boundaries:
        values = ", ".join(f"({_quote(p)}, {_timestamp_literal(ts)})" for p, ts in boundaries.items())
        since = f"coalesce(b.since, {_FLOOR})"
        source = (
            f"{quote_table(FACT)} f left join (values {values}) as b(patient_id, since) on f.patient_id = b.patient_id"
        )
    else:
        source = f"{quote_table(FACT)} f"
    frame = dev.sql(
        f"""
        select patient_id, max(gap_minutes) as max_gap_minutes, count(*) as new_readings from (
            select patient_id, reading_ts_utc, since_ts,
                   date_diff('millisecond', lag(reading_ts_utc) over (
                        partition by patient_id order by reading_ts_utc), reading_ts_utc) / 60000e0 as gap_minutes
            from (select f.patient_id, f.reading_ts_utc, {since} as since_ts from {source}) as r
            where reading_ts_utc >= since_ts
        ) as g where reading_ts_utc > since_ts group by patient_id order by 1
        """
    )
    checks = []
    for row in frame.itertuples(index=False):
        limits = (site_thresholds or {}).get(str(row.patient_id), t)
        gap_h = float(row.max_gap_minutes) / 60 if _present(row.max_gap_minutes) else 0.0
        status: Status = "pass" if gap_h <= limits.max_gap_hours else limits.gap_severity
        checks.append(
            Check(
                f"gaps {row.patient_id}",
                status,
                f"longest gap in new data {gap_h:.1f} h over {int(row.new_readings)} new readings "
                f"(limit {limits.max_gap_hours:g} h)",
                round(gap_h, 2),
                limits.max_gap_hours,
            )
        )
    return checks


def check_reading_dates(dev: Lakehouse, now: datetime) -> list[Check]:
    """No reading from before CGMs existed or from the future reaches `main` (the ingest quarantines
    them; this catches any other way in). The same limits as `workbench.ingest.validate`."""
    from workbench.ingest.validate import FUTURE_TOLERANCE_MS, MIN_DATE_MS

    if ENTRIES not in dev.tables():
        return []
    latest_ok = int(now.timestamp() * 1000) + FUTURE_TOLERANCE_MS
    bad = _count_where(dev, ENTRIES, f'"date" < {MIN_DATE_MS} or "date" > {latest_ok}')
    return [
        Check(
            "reading dates",
            "pass" if bad == 0 else "fail",
            f"{bad} readings dated before 2006 or more than {FUTURE_TOLERANCE_MS // 60000} min in the future",
            float(bad),
            0.0,
        )
    ]


def _present(value: Any) -> bool:
    """False for None / NaN / NaT / pd.NA (whose truth value is ambiguous)."""
    import pandas as pd

    return value is not None and not bool(pd.isna(value))


# before any CGM reading (the ingest quarantines readings from before 2006)
_FLOOR = "timestamp '1900-01-01 00:00:00'"


def _timestamp_literal(value: Any) -> str:
    """A timestamp literal (no zone) of a UTC instant, as both engines read it."""
    import pandas as pd

    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return f"timestamp '{ts.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def check_value_ranges(dev: Lakehouse, t: Thresholds) -> list[Check]:
    checks = []
    tables = set(dev.tables())
    if FACT in tables:
        bad = _count_where(dev, FACT, f"glucose_value < {t.glucose_min} or glucose_value > {t.glucose_max}")
        checks.append(
            Check(
                "glucose range",
                "pass" if bad == 0 else "fail",
                f"{bad} readings outside {t.glucose_min:g}-{t.glucose_max:g} mg/dL in {FACT}",
                float(bad),
                0.0,
            )
        )
    for table, columns in PERCENT_COLUMNS:
        if table not in tables:
            continue
        present = [c for c in columns if c in dev.sql(f"select * from {quote_table(table)} limit 0").columns]
        if not present:
            continue
        cond = " or ".join(f"{quote_ident(c)} < 0 or {quote_ident(c)} > 100" for c in present)
        bad = _count_where(dev, table, cond)
        checks.append(
            Check(
                f"percent range {table}",
                "pass" if bad == 0 else "fail",
                f"{bad} rows with a percentage outside 0-100",
                float(bad),
                0.0,
            )
        )
    return checks


def _count_where(lh: Lakehouse, table: str, condition: str) -> int:
    return int(_scalar(lh, f"select count(*) from {quote_table(table)} where {condition}") or 0)


def check_rejects(dev: Lakehouse, main: Lakehouse, t: Thresholds) -> list[Check]:
    """Share of records quarantined among those that arrived since `main`."""
    dev_tables, main_tables = set(dev.tables()), set(main.tables())
    if ENTRIES not in dev_tables:
        return []
    new_entries = max(0, _count(dev, ENTRIES) - (_count(main, ENTRIES) if ENTRIES in main_tables else 0))
    new_rejects = 0
    if REJECTS in dev_tables:
        new_rejects = max(0, _count(dev, REJECTS) - (_count(main, REJECTS) if REJECTS in main_tables else 0))
    total = new_entries + new_rejects
    pct = 100.0 * new_rejects / total if total else 0.0
    return [
        Check(
            "rejects ratio",
            "pass" if pct <= t.max_rejects_pct else "fail",
            f"{new_rejects} of {total} new records quarantined ({pct:.2f}%, limit {t.max_rejects_pct:g}%)",
            round(pct, 3),
            t.max_rejects_pct,
        )
    ]


def check_dbt_tests(results: list[dict[str, Any]] | None) -> list[Check]:
    """dbt data/unit test outcomes (dicts with name, status, failures)."""
    if results is None:
        return []
    failed = [r for r in results if r.get("status") in ("fail", "error")]
    warned = [r for r in results if r.get("status") == "warn"]
    if failed:
        names = ", ".join(r["name"] for r in failed[:5]) + (" ..." if len(failed) > 5 else "")
        return [Check("dbt tests", "fail", f"{len(failed)} of {len(results)} failed: {names}", float(len(failed)), 0.0)]
    status: Status = "warn" if warned else "pass"
    return [Check("dbt tests", status, f"{len(results)} run, {len(warned)} warnings", 0.0, 0.0)]


def run_audit(
    branch: str = DEV_BRANCH,
    baseline: str = MAIN_BRANCH,
    thresholds: Thresholds | None = None,
    dbt_results: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
    sources: list[SourceState] | None = None,
    backfill: bool = False,
) -> AuditReport:
    """Run every check on `branch`, comparing with `baseline` (the last promoted state); `sources`
    (from the ingest report) give each site's clock and its own thresholds."""
    t = thresholds or Thresholds()
    now = now or datetime.now(UTC)
    dev, main = Lakehouse(branch), Lakehouse(baseline)
    report = AuditReport(
        branch=branch,
        baseline=baseline,
        checked_at=now.isoformat(),
        commit_id=dev.lake.resolve(branch).commit_id,
    )
    report.checks += check_required_tables(dev, t)
    report.checks += check_freshness(dev, t, now, sources, backfill)
    report.checks += check_row_counts(dev, main, t)
    per_patient = {s.patient_id: t.for_site(s.audit) for s in sources or [] if s.audit}
    report.checks += check_gaps(dev, main, t, per_patient)
    report.checks += check_value_ranges(dev, t)
    report.checks += check_reading_dates(dev, now)
    report.checks += check_rejects(dev, main, t)
    report.checks += check_dbt_tests(dbt_results)
    return report


def promote(report: AuditReport, target: str = MAIN_BRANCH, report_path: Path | None = None) -> str | None:
    """Merge the audited branch into `target` atomically, only if the audit passed and nothing moved since.

    Returns the merge commit id (None when there was nothing to merge).
    """
    where = f"; see {report_path}" if report_path else ""
    if not report.passed:
        names = ", ".join(c.name for c in report.failed)
        raise AuditFailedError(f"audit failed ({names}); {target} was not changed{where}")
    dev = Lakehouse(report.branch)
    head = dev.lake.resolve(report.branch).commit_id
    if head != report.commit_id:
        raise AuditFailedError(
            f"{report.branch} moved from {report.commit_id} to {head} after the audit; {target} was not changed — "
            "run the audit again"
        )
    return dev.lake.merge(report.commit_id, target, f"promote {report.branch}@{report.commit_id} (audit passed)")


# the tests a layer build leaves out (they point at a later layer); the audit runs them
CROSS_LAYER_TESTS = "test_name:relationships"


def save_layer_tests(result: Any, path: Path | str, branch: str = DEV_BRANCH) -> Path:
    """A layer task's dbt test outcomes, with the branch head they were taken on (JSON, for the audit)."""
    head = Lakehouse(branch).log(limit=1)[0].id
    tests = [{"name": t.name, "status": t.status, "failures": t.failures} for t in result.tests]
    target = Path(path)
    target.write_text(json.dumps({"branch": branch, "head": head, "tests": tests}, indent=1))
    return target


def _layer_results(branch: str, layer_tests: list[Path | str] | None) -> list[dict[str, Any]] | None:
    """The layer tasks' test outcomes when they describe the branch as it is now (the last layer's
    head is the branch's head: nothing was written since); None otherwise."""
    if not layer_tests:
        return None
    records = []
    for path in layer_tests:
        try:
            records.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError):
            return None
    if any(r.get("branch") != branch for r in records):
        return None
    if records[-1].get("head") != Lakehouse(branch).log(limit=1)[0].id:
        return None
    return [t for r in records for t in r.get("tests", [])]


def audit(
    branch: str = DEV_BRANCH,
    baseline: str = MAIN_BRANCH,
    thresholds: dict[str, Any] | Thresholds | None = None,
    report_path: Path | None = None,
    dbt_tests: bool = True,
    ingest_report: Path | str | None = None,
    backfill: bool = False,
    layer_tests: list[Path | str] | None = None,
) -> AuditReport:
    """The pipeline's audit step: dbt tests on `branch`, then every check; saves the report if asked.

    `ingest_report` (the ingest task's JSON) lets freshness be judged per site against the source's
    clock and with the site's own thresholds; `backfill` reports old data without judging it.
    `layer_tests` (the layer tasks' `save_layer_tests` files, in layer order): when they describe the
    branch as it is, their outcomes count and only the cross-layer tests run again; otherwise every
    dbt test runs."""
    limits = thresholds if isinstance(thresholds, Thresholds) else Thresholds.from_params(thresholds)
    results = None
    if dbt_tests:
        from workbench.transform.runner import run_dbt

        earlier = _layer_results(branch, layer_tests)
        outcome = run_dbt("test", branch=branch, select=CROSS_LAYER_TESTS if earlier is not None else None)
        results = [{"name": t.name, "status": t.status, "failures": t.failures} for t in outcome.tests]
        if outcome.error and not results:
            results = [{"name": "dbt test", "status": "error", "failures": None}]
        results = (earlier or []) + results
    sources = SourceState.from_ingest_report(ingest_report)
    report = run_audit(branch, baseline, limits, dbt_results=results, sources=sources, backfill=backfill)
    if report_path is not None:
        report.save(Path(report_path))
    write_metrics(report)
    return report


def metrics_path(settings: Any = None) -> Path:
    """The Prometheus text file the audit leaves for alerting (node-exporter textfile format)."""
    from workbench.settings import get_settings

    return (settings or get_settings()).home / "metrics" / "cascade_audit.prom"


def write_metrics(report: AuditReport, path: Path | None = None) -> Path:
    """Per-site staleness gauges and the audit verdict, replaced atomically on every audit:
    `cascade_site_staleness_hours{site}`, `cascade_site_stale{site}` (1 = warned), `cascade_audit_passed`,
    `cascade_audit_warnings`. An alert rule such as `cascade_site_stale == 1` pages on a silent site."""
    target = path or metrics_path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = [
        "# HELP cascade_site_staleness_hours Hours between a site's newest reading and the source's clock.",
        "# TYPE cascade_site_staleness_hours gauge",
    ]
    fresh = [c for c in report.checks if c.name.startswith("freshness ") and c.value is not None]
    for c in fresh:
        lines.append(f'cascade_site_staleness_hours{{site="{_label(c.name[10:])}"}} {c.value}')
    lines += [
        "# HELP cascade_site_stale 1 when the audit warned that a site is stale.",
        "# TYPE cascade_site_stale gauge",
    ]
    for c in fresh:
        lines.append(f'cascade_site_stale{{site="{_label(c.name[10:])}"}} {1 if c.status != "pass" else 0}')
    lines += [
        "# HELP cascade_audit_passed 1 when the last audit passed.",
        "# TYPE cascade_audit_passed gauge",
        f"cascade_audit_passed {1 if report.passed else 0}",
        "# HELP cascade_audit_warnings Warnings of the last audit.",
        "# TYPE cascade_audit_warnings gauge",
        f"cascade_audit_warnings {len(report.warnings)}",
    ]
    tmp = target.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o600)
    tmp.replace(target)
    return target


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def promote_audited(report_path: Path, target: str = MAIN_BRANCH) -> str | None:
    """The pipeline's promotion step: merge only what the saved audit report approved."""
    return promote(AuditReport.load(Path(report_path)), target, report_path=Path(report_path))
