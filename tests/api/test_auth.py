"""The auth matrix over real HTTP (OWASP API Security Top 10): broken object-level authorization
across patients, broken authentication, excessive data exposure, lack of rate limiting, injection;
and neither tokens nor the key ever reach the server log."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from tests.api.conftest import RATE_LIMIT, SECRET, Api, published_rows
from tests.conftest import demo_end
from workbench.api.auth import ALGORITHM, AUDIENCE, ISSUER

DAY = (demo_end() - timedelta(days=3)).date().isoformat()  # a whole day of the pinned demo lake

ENDPOINTS = [
    ("api/v1/glucose/readings", {"date": DAY}),
    ("api/v1/glucose/daily", {}),
    ("api/v1/glucose/overview", {}),
    ("api/v1/glucose/periods", {}),
    ("api/v1/glucose/agp", {}),
    ("api/v1/patients", {}),
]


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "patient:p001",
        "role": "patient",
        "patient": "p001",
        "iat": now,
        "exp": now + 600,
        "jti": "t" + str(now),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def assert_401(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"] == "unauthorized" and answer.json()["message"]
    assert answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("path", "params"), ENDPOINTS)
def test_no_token_is_401_everywhere(api: Api, path: str, params: dict[str, str]) -> None:
    assert_401(httpx.get(api.url + path, params=params))
    assert_401(httpx.get(api.url + path, params=params, headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    assert_401(httpx.get(api.url + path, params=params, headers={"Authorization": "Bearer"}))


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(jwt.encode(claims(), "another-key-of-enough-length-0123456789", algorithm=ALGORITHM), id="forged"),
        pytest.param(jwt.encode(claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(jwt.encode(claims(aud="someone-else"), SECRET, algorithm=ALGORITHM), id="wrong-audience"),
        pytest.param(jwt.encode(claims(iss="elsewhere"), SECRET, algorithm=ALGORITHM), id="wrong-issuer"),
        pytest.param(jwt.encode(claims(exp=int(time.time()) - 3600), SECRET, algorithm=ALGORITHM), id="expired"),
        pytest.param(jwt.encode(claims(exp=None), SECRET, algorithm=ALGORITHM), id="no-expiry"),
        pytest.param(jwt.encode(claims(jti=None), SECRET, algorithm=ALGORITHM), id="no-jti"),
        pytest.param(jwt.encode(claims(role="root"), SECRET, algorithm=ALGORITHM), id="unknown-role"),
        pytest.param(jwt.encode(claims(), SECRET, algorithm="HS512"), id="other-hmac-algorithm"),
        pytest.param("not.a.token", id="garbage"),
    ],
)
def test_broken_tokens_are_401(api: Api, token: str) -> None:
    assert_401(api.client(token).get("api/v1/glucose/readings", params={"date": DAY}))


def test_tampered_payload_is_401(api: Api) -> None:
    header, payload, signature = api.token(patient="p001").split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(role="admin", sub="admin")
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    assert_401(api.client(f"{header}.{forged}.{signature}").get("api/v1/patients"))


def test_expired_token_made_by_the_cli_code(api: Api) -> None:
    from datetime import UTC, datetime, timedelta

    from workbench.api.auth import create_token

    old = create_token(patient="p001", expires="1m", settings=api.settings, now=datetime.now(UTC) - timedelta(hours=1))
    answer = api.client(old).get("api/v1/patients")
    assert_401(answer)
    assert "expired" in answer.json()["message"]


@pytest.mark.parametrize(("path", "params"), ENDPOINTS[:-1])
def test_a_patient_never_reads_another_patient(api: Api, path: str, params: dict[str, str]) -> None:
    with api.client(api.token(patient="p001")) as client:
        other = client.get(path, params={**params, "patient": "p002"})
        own = client.get(path, params=params)
        by_ref = client.get(path, params={**params, "ref": "main"})
    assert other.status_code == 403 and other.json()["error"] == "forbidden"
    assert by_ref.status_code == 403
    assert own.status_code == 200 and {r["patient_id"] for r in own.json()} <= {"p001"}


def test_a_patient_cursor_for_another_patient_reads_nothing_of_theirs(api: Api) -> None:
    """A cursor names a position, not a permission: the patient filter still applies."""
    cursor = base64.urlsafe_b64encode(json.dumps(["p000", "2000-01-01T00:00:00+00:00"]).encode()).decode()
    with api.client(api.token(patient="p001")) as client:
        answer = client.get("api/v1/glucose/readings", params={"date": DAY, "cursor": cursor.rstrip("=")})
    assert answer.status_code == 200 and {r["patient_id"] for r in answer.json()} <= {"p001"}


def test_admin_only_things(api: Api) -> None:
    patient = api.client(api.token(patient="p001"))
    admin = api.client(api.token(admin=True))
    assert patient.get("metrics").status_code == 403
    assert admin.get("metrics").status_code == 200
    assert admin.get("api/v1/glucose/agp", params={"patient": "p002"}).status_code == 200


def test_excessive_data_exposure(api: Api) -> None:
    with api.client(api.token(admin=True)) as client:
        reading = client.get("api/v1/glucose/readings", params={"date": DAY, "limit": 1}).json()[0]
        patient = client.get("api/v1/patients").json()[0]
    assert set(reading) == {
        "patient_id", "reading_timestamp", "reading_date", "glucose_value", "units", "glucose_category",
        "rolling_avg_3", "direction",
    }  # fmt: skip
    assert set(patient) == {
        "patient_id", "display_name", "time_zone", "first_reading_date", "last_reading_date", "reading_count",
        "newest_reading_at",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("api/v1/glucose/readings", {"date": DAY, "patient": "p001' or '1'='1"}),
        ("api/v1/glucose/readings", {"date": f"{DAY}'; drop table marts.fct_glucose_readings; --"}),
        ("api/v1/glucose/readings", {"date": "2026-13-45"}),
        ("api/v1/glucose/readings", {"date": DAY, "limit": "0"}),
        ("api/v1/glucose/readings", {"date": DAY, "limit": "1000000"}),
        ("api/v1/glucose/readings", {"date": DAY, "limit": "1; select 1"}),
        ("api/v1/glucose/readings", {"date": DAY, "cursor": "'; drop table x; --"}),
        (
            "api/v1/glucose/readings",
            {"date": DAY, "cursor": base64.urlsafe_b64encode(b'["p1\' or 1=1", "x"]').decode()},
        ),
        ("api/v1/glucose/readings", {"start": "yesterday", "end": "today"}),
        ("api/v1/glucose/readings", {"date": DAY, "ref": "main; drop table x"}),
        ("api/v1/glucose/readings", {"date": DAY, "ref": "../../etc/passwd"}),
        ("api/v1/glucose/daily", {"start": f"{DAY} or 1=1"}),
        ("api/v1/glucose/agp", {"patient": "p" * 65}),
        ("api/v1/glucose/agp", {"units": "'; select pg_sleep(5); --"}),
    ],
)
def test_injection_and_bad_input_are_422(api: Api, path: str, params: dict[str, str]) -> None:
    before = published_rows(api.settings, "select count(*) from marts.fct_glucose_readings")
    answer = api.client(api.token(admin=True)).get(path, params=params)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request" and body["message"] and "Traceback" not in answer.text
    assert published_rows(api.settings, "select count(*) from marts.fct_glucose_readings") == before


def test_rate_limit_per_token(api: Api) -> None:
    limit = int(RATE_LIMIT.split("/")[0])
    token = api.token(patient="p002")
    statuses = []
    with api.client(token) as client:
        for _ in range(limit + 5):
            statuses.append(client.get("api/v1/patients").status_code)
        last = client.get("api/v1/patients")
    assert statuses[:limit] == [200] * limit
    assert last.status_code == 429 and last.json()["error"] == "rate_limited"
    assert int(last.headers["Retry-After"]) >= 1
    assert api.client(api.token(patient="p002")).get("api/v1/patients").status_code == 200  # another token


def test_token_cli(api: Api, tmp_path: Path) -> None:
    """`cascade token create` prints a working token; bad usage is one line and exit 2; without
    CASCADE_API_SECRET the key is generated once into CASCADE_HOME with mode 0600."""
    cascade = str(Path(sys.executable).with_name("cascade"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    server_env = {**env, "CASCADE_HOME": str(api.settings.home), "CASCADE_API_SECRET": SECRET}
    made = subprocess.run(
        [cascade, "token", "create", "--patient", "p001", "--expires", "5m"],
        env=server_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert api.client(made.stdout.strip()).get("api/v1/patients").status_code == 200
    for args in (["--admin", "--patient", "p001"], [], ["--admin", "--expires", "forever"], ["--patient", "a b"]):
        bad = subprocess.run(
            [cascade, "token", "create", *args], env=server_env, capture_output=True, text=True, timeout=120
        )
        assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    home = tmp_path / "fresh-home"
    home.mkdir()  # a new lake's home (`cascade init`) without an API key yet
    fresh = subprocess.run(
        [cascade, "token", "create", "--admin"],
        env={**env, "CASCADE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fresh.returncode == 0, fresh.stderr
    key_file = home / "api-secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text().strip()) >= 32
    assert_401(api.client(fresh.stdout.strip()).get("api/v1/patients"))  # signed by another key


def test_no_token_or_secret_in_the_server_log(api: Api) -> None:
    token = api.token(admin=True)
    with httpx.Client(base_url=api.url, timeout=60) as client:
        client.get("", params={"token": token})  # the hub login URL
        client.get("api/v1/patients", headers={"Authorization": f"Bearer {token}"})
        client.get("api/v1/patients", headers={"Authorization": "Bearer not.a.token"})
    time.sleep(0.5)
    log = api.log.read_text()
    assert "GET /api/v1/patients 200" in log  # the access log is on
    assert token not in log and SECRET not in log and "not.a.token" not in log and "token=" not in log
    assert "eyJ" not in log  # no JWT at all
