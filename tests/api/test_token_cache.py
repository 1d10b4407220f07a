"""The API's token cache (`TokenVerifier`): a token verified once is served from memory until it
expires — the clock is injected, so expiry is tested without waiting — and the cache never accepts
anything `verify_token` would refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import SecretStr

from workbench.api.auth import LEEWAY, TokenVerifier, create_token, signing_key, verify_token
from workbench.api.errors import TokenError
from workbench.settings import load_settings

KEY = "token-cache-test-signing-key-" + "x" * 32


@pytest.fixture
def settings(tmp_path):  # type: ignore[no-untyped-def]
    return load_settings(home=tmp_path, profile="embedded", warehouse=None, api_secret=SecretStr(KEY))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_cached_token_expires_on_time(settings) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    verify = TokenVerifier(signing_key(settings), clock=clock)
    token = create_token(patient="p001", expires="1h", settings=settings)
    first = verify(token)
    assert verify(token) is first  # the second check is the cached principal
    clock.now = first.expires_at + LEEWAY  # the last moment it is still accepted
    assert verify(token) is first
    clock.now = first.expires_at + LEEWAY + timedelta(seconds=1)
    with pytest.raises(TokenError, match="expired"):
        verify(token)


def test_the_cache_accepts_nothing_verify_token_refuses(settings) -> None:  # type: ignore[no-untyped-def]
    verify = TokenVerifier(signing_key(settings))
    good = create_token(patient="p001", expires="1h", settings=settings)
    verify(good)
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode({**claims, "patient": "p002"}, "another-key-" + "y" * 32, algorithm="HS256")
    for bad in (forged, good + "x", good[:-2]):
        with pytest.raises(TokenError):
            verify_token(bad, key=signing_key(settings))
        with pytest.raises(TokenError):
            verify(bad)
        with pytest.raises(TokenError):  # and a refused token is not remembered as valid either
            verify(bad)


def test_the_cache_is_bounded(settings) -> None:  # type: ignore[no-untyped-def]
    verify = TokenVerifier(signing_key(settings), size=3)
    tokens = [create_token(patient=f"p00{i}", expires="1h", settings=settings) for i in range(5)]
    principals = [verify(t) for t in tokens]
    assert len(verify._seen) == 3
    assert list(verify._seen) == tokens[2:]  # least recently used first out
    assert verify(tokens[0]) == principals[0]  # verified again in full
