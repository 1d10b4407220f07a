"""The native stack is private by default: Trino takes passwords over HTTPS only (its HTTP port refuses
clients), Nessie takes bearer tokens signed by the stack's key, the credentials are owner-only files,
and no secret reaches a statement Trino records (``system.runtime.queries``)."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pandas as pd
import pytest

from workbench.errors import StackError
from workbench.stack import credentials, launcher

pytestmark = pytest.mark.slow

BIND = launcher.BIND


def _statement(base: str, verify: object, auth: tuple[str, str] | None) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/statement",
        content="select 1",
        headers={"X-Trino-User": credentials.TRINO_USER},
        auth=auth,
        verify=verify,  # type: ignore[arg-type]
        timeout=30,
    )


def test_trino_refuses_clients_without_the_password(stack_home: Path, stack_env: dict[str, str]) -> None:
    ca = stack_env["CASCADE_TRINO_CA"]
    https = f"https://{BIND}:{launcher.PORTS['trino']}"
    password = stack_env["CASCADE_TRINO_PASSWORD"]
    assert _statement(https, ca, None).status_code == 401
    assert _statement(https, ca, (credentials.TRINO_USER, "wrong-" + password)).status_code == 401
    assert _statement(https, ca, (credentials.TRINO_USER, password)).status_code == 200
    # the HTTP port is the node's internal one: no client gets in there, with or without a password
    http = f"http://{BIND}:{launcher.PORTS['trino-internal']}"
    assert _statement(http, True, None).status_code in (401, 403)
    # the certificate is the stack's own: a client trusting only the public CAs cannot be fooled into it
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _statement(https, True, (credentials.TRINO_USER, password))


def test_a_session_with_a_wrong_password_fails_with_one_clear_line(stack_home: Path, stack_env: dict[str, str]) -> None:
    from workbench.lake.nessie import NessieLake
    from workbench.settings import load_settings
    from workbench.sql.trino import TrinoSession

    overrides = {k.removeprefix("CASCADE_").lower(): v for k, v in stack_env.items()}
    good = load_settings(home=stack_home, profile="stack", **overrides)
    lake = NessieLake(good, bootstrap=False)
    bad = load_settings(home=stack_home, profile="stack", **{**overrides, "trino_password": "not-it"})
    session = TrinoSession(lake, "main", bad)
    with pytest.raises(StackError, match=r"refused the login of 'cascade'.*CASCADE_TRINO_PASSWORD"):
        session.sql("select 1")
    session.close()


def test_nessie_refuses_requests_without_a_valid_token(stack_home: Path, stack_env: dict[str, str]) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from workbench.lake.nessie import NessieLake
    from workbench.settings import load_settings

    base = f"http://{BIND}:{launcher.PORTS['nessie']}"
    token = stack_env["CASCADE_NESSIE_TOKEN"]
    forged = credentials._mint_token(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    for path in ("/api/v2/trees", "/iceberg/main/v1/config", "/iceberg/v1/main/namespaces"):
        assert httpx.get(base + path, timeout=30).status_code == 401, path
        assert httpx.get(base + path, headers={"Authorization": f"Bearer {forged}"}, timeout=30).status_code == 401
    assert (
        httpx.get(base + "/api/v2/trees", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 200
    )
    overrides = {k.removeprefix("CASCADE_").lower(): v for k, v in stack_env.items() if k != "CASCADE_NESSIE_TOKEN"}
    settings = load_settings(home=stack_home, profile="stack", **overrides, nessie_token=None)
    with pytest.raises(StackError, match=r"refused the request \(401\): it needs a token; set CASCADE_NESSIE_TOKEN"):
        NessieLake(settings, bootstrap=False).refs()


def test_credentials_are_readable_only_by_their_owner(stack_home: Path) -> None:
    root = stack_home / "stack"
    assert stat.S_IMODE((root / "secrets").stat().st_mode) == 0o700
    for path in [root / "credentials.env", root / "client.env", *(root / "secrets").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "$2y$" in (root / "secrets" / credentials.PASSWORD_FILE).read_text()  # a bcrypt hash, not the password


def test_no_secret_in_the_statements_trino_records(stack_home: Path, stack_settings) -> None:  # type: ignore[no-untyped-def]
    """A ref-pinned session creates a dynamic catalog; its statement names ${ENV:...} references only."""
    from workbench.lakehouse import Lakehouse

    settings = stack_settings
    dev = Lakehouse("dev", settings=settings)
    dev.write("raw.secretless", pd.DataFrame({"id": [1, 2]}), message="first")
    first = dev.log(limit=1)[0].id
    dev.write("raw.secretless", pd.DataFrame({"id": [3]}), message="second", mode="append")
    pinned = Lakehouse(first, settings=settings)  # a commit: a catalog pinned to dev@<hash>
    assert int(pinned.sql("select count(*) as n from raw.secretless")["n"][0]) == 2
    pinned.close()
    recorded = dev.sql("select query from system.runtime.queries")["query"].tolist()
    dev.close()
    assert any(q.startswith("create catalog") and "@" in q for q in recorded), "no ref-pinned catalog was created"
    creds = credentials.ensure(stack_home / "stack")
    for name in ("CASCADE_STACK_S3_SECRET_KEY", "CASCADE_STACK_NESSIE_TOKEN", "CASCADE_STACK_TRINO_PASSWORD"):
        assert not any(creds[name] in q for q in recorded), f"{name} is in Trino's query history"
