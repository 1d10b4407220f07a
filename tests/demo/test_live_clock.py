"""The demo Nightscout server's simulated clock and scriptable events (no wall clock anywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from workbench.demo.server import DemoServer, hash_secret
from workbench.demo.simulate import DemoDataset

END = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
SECRET = "live-clock-secret"


@pytest.fixture
def server() -> Iterator[DemoServer]:
    with DemoServer(DemoDataset(seed=5, patients=2, days=1, end=END, reserve_days=3), secret=SECRET) as srv:
        yield srv


def _get(server: DemoServer, patient: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.site_url(patient)}/api/v1/{path}", params=params, headers={"api-secret": hash_secret(SECRET)}
    )


def _newest(server: DemoServer, patient: str = "p001") -> int:
    return int(_get(server, patient, "entries/sgv.json", count=1).json()[0]["date"])


def test_the_clock_serves_a_new_reading_every_five_simulated_minutes(server: DemoServer) -> None:
    first = _newest(server)
    status = _get(server, "p001", "status.json").json()
    assert status["serverTimeEpoch"] == server.control.dataset.visible_until  # the simulated clock
    server.control.set_time(END + timedelta(minutes=4))
    assert _newest(server) == first  # no new reading yet
    server.control.set_time(END + timedelta(minutes=5))
    assert _newest(server) == first + 5 * 60_000
    server.control.advance(60)
    assert _newest(server) == first + 65 * 60_000
    server.control.set_time(END)  # time never runs backwards
    assert _newest(server) == first + 65 * 60_000
    with pytest.raises(ValueError, match="horizon"):
        server.control.set_time(END + timedelta(days=10))


def test_site_down_gap_late_upload_second_device_and_new_patient(server: DemoServer) -> None:
    data = server.control.dataset
    server.control.site_down("p002")
    assert _get(server, "p002", "entries.json").status_code == 503
    assert _get(server, "p001", "entries.json").status_code == 200  # only that site
    server.control.site_up("p002")
    assert _get(server, "p002", "entries.json").status_code == 200

    # a 10-hour sensor gap, and two hours uploaded late (served once the clock passes the upload)
    gap = data.hide("p001", END + timedelta(hours=1), END + timedelta(hours=11))
    late = data.hide("p001", END + timedelta(hours=12), END + timedelta(hours=14), until=END + timedelta(hours=15))
    assert gap == 120 and late == 24
    start = int(END.timestamp() * 1000)
    grid = data.patient("p001").dates  # type: ignore[union-attr]

    def served_after_end() -> list[int]:
        dates = [d["date"] for d in _get(server, "p001", "entries/sgv.json", count=1000).json()]
        return sorted(d for d in dates if d > start)

    def expected(now: datetime, held_back: list[tuple[datetime, datetime]]) -> list[int]:
        upto = int(now.timestamp() * 1000)
        out = []
        for ms in (int(x) for x in grid if start < x <= upto):
            if not any(int(a.timestamp() * 1000) <= ms < int(b.timestamp() * 1000) for a, b in held_back):
                out.append(ms)
        return out

    gap_window = (END + timedelta(hours=1), END + timedelta(hours=11))
    late_window = (END + timedelta(hours=12), END + timedelta(hours=14))
    server.control.set_time(END + timedelta(hours=14, minutes=30))
    assert served_after_end() == expected(END + timedelta(hours=14, minutes=30), [gap_window, late_window])
    server.control.set_time(END + timedelta(hours=15))  # the late upload arrives
    after = served_after_end()
    assert after == expected(END + timedelta(hours=15), [gap_window])
    assert not [d for d in after if gap_window[0].timestamp() * 1000 <= d < gap_window[1].timestamp() * 1000]

    data.duplicate_device("p002")
    server.control.advance(10)
    newest = _get(server, "p002", "entries/sgv.json", count=2).json()
    assert newest[0]["date"] == newest[1]["date"] and newest[0]["sgv"] == newest[1]["sgv"]
    assert newest[0]["_id"] != newest[1]["_id"] and {d["device"] for d in newest} == {"share2", "xdrip-follower"}

    member = data.add_patient()
    assert member.patient_id == "p003"
    assert _get(server, "p003", "entries.json").status_code == 200


def test_a_live_clock_serves_new_readings_as_its_time_source_moves() -> None:
    """`cascade demo-nightscout --live`: the simulated clock follows a time source (here a counter
    the test moves, never the wall clock), `speed` simulated seconds per second, up to the horizon."""
    from workbench.demo.server import LiveClock

    ticks = [1000.0]
    dataset = DemoDataset(seed=5, patients=1, days=1, end=END, reserve_days=1)
    clock = LiveClock(dataset.now, speed=60, source=lambda: ticks[0])
    with DemoServer(dataset, secret=SECRET) as srv:
        srv.control.clock = clock
        first = _newest(srv)
        ticks[0] += 4  # 4 s x 60 = 4 simulated minutes: nothing new yet
        assert _newest(srv) == first
        ticks[0] += 1  # 5 simulated minutes: the next reading
        assert _newest(srv) == first + 5 * 60_000
        assert _get(srv, "p001", "status.json").json()["serverTimeEpoch"] == first + 5 * 60_000
        ticks[0] += 10 * 24 * 60  # ten simulated days: the clock stops at the horizon (one day)
        assert _newest(srv) <= int((END + timedelta(days=1)).timestamp() * 1000)
    with pytest.raises(ValueError, match="speed"):
        LiveClock(END, speed=0)


def test_demo_nightscout_rejects_a_bad_end_time_with_one_line() -> None:
    from typer.testing import CliRunner

    from workbench.cli import app

    result = CliRunner().invoke(app, ["demo-nightscout", "--live", "--end", "yesterday"])
    assert result.exit_code == 2
    assert "--end" in result.output and "ISO 8601" in result.output and "Traceback" not in result.output
