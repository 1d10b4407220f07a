"""The dashboard's view for hostile or mistaken page input (the query string): an unknown patient
or ref, unreadable or reversed dates, a ref without glucose data. Each gives one notice and the
nearest view that can be shown (so the page keeps its controls); the page names the ref and commit."""

from __future__ import annotations

import html

import pytest

from workbench.viz.view import dashboard_view, warm_up


@pytest.fixture(scope="module")
def data(demo_home):  # type: ignore[no-untyped-def]
    from tests.conftest import demo_end
    from workbench.settings import load_settings

    settings = load_settings(home=demo_home, profile="embedded", warehouse=None, postgres_url=None, demo_end=demo_end())
    return warm_up(ref="main", settings=settings)


@pytest.mark.parametrize(
    ("query", "notice"),
    [
        ("patient=nobody", "unknown patient 'nobody'"),
        ("ref=nope", "unknown ref 'nope'"),
        ("ref=ops", "'ops'"),
        ("start=2026-11-30&end=2026-11-01", "starts (2026-11-30) after it ends (2026-11-01)"),
        ("start=garbage", "start must be a date"),
        ("days=abc", "days must be a whole number"),
        ("patient=%3Cscript%3Ealert(1)%3C/script%3E", "unknown patient"),
    ],
)
def test_bad_input_gives_one_notice_and_a_usable_page(data, query: str, notice: str) -> None:  # type: ignore[no-untyped-def]
    view = dashboard_view(query, data=data)
    assert len(view.notices) == 1 and notice in view.notices[0], view.notices
    assert view.ref == "main" and view.days == 14 and view.error is None
    header = view.header_html()
    assert header.count("cascade-notice") == 1 and "<script>" not in header
    assert html.escape(notice, quote=True).split("&#x27;")[0] in header
    controls = view.controls_html()
    assert 'id="cascade-patient"' in controls and 'id="cascade-ref"' in controls
    for part in ("cards", "ranges", "agp", "trend", "stats"):
        assert view.show(part) is not None


def test_refs_offered_hold_glucose_data_and_the_header_names_the_commit(data) -> None:  # type: ignore[no-untyped-def]
    from workbench.lakehouse import Lakehouse

    lh = Lakehouse("main", settings=data.settings)
    lh.branch("ops-like", "main")  # a branch holding marts is offered ...
    try:
        refs = data.refs()
        assert refs[0] == "main" and "ops-like" in refs
        assert all("mrt_glucose_daily_metrics" in " ".join(lh.lake.state(r)) for r in refs)
        view = dashboard_view("", data=data)
        commit = lh.lake.resolve("main").commit_id
        assert f"ref main @ {commit[:12]}" in view.header_html()
        dev = dashboard_view("ref=dev", data=data)
        assert f"ref dev @ {lh.lake.resolve('dev').commit_id[:12]}" in dev.header_html()
    finally:
        lh.lake.delete_branch("ops-like")


def test_an_empty_period_shows_its_notice_once(data) -> None:  # type: ignore[no-untyped-def]
    view = dashboard_view("start=2001-01-01&end=2001-01-14", data=data)
    assert view.error and not view.notices
    shown = [view.show(p) for p in ("cards", "ranges", "agp", "trend", "stats")]
    assert sum("cascade-notice" in getattr(s, "data", "") for s in shown) == 1
