"""JWT bearer tokens for the API and the hub (PyJWT, HS256).

A token names one role: `admin` (every patient, other lake refs, metrics, the hub) or `patient`
(exactly one patient's data). The signing key is `CASCADE_API_SECRET`, else a random key generated
on first use into `CASCADE_HOME/api-secret` with mode 0600. Tokens are verified with a fixed
algorithm list (so `alg: none` and algorithm confusion fail), a required audience and issuer, and
required `exp`/`iat`/`sub`/`jti` claims.

```python
token = create_token(patient="p001", expires="1h")
principal = verify_token(token)          # Principal(role="patient", patient="p001", ...)
```
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from workbench.api.errors import TokenError
from workbench.settings import Settings, get_settings

ALGORITHM = "HS256"
AUDIENCE = "cascade-api"
ISSUER = "cascade"
MIN_KEY_BYTES = 32
MAX_EXPIRY = timedelta(days=366)
LEEWAY = timedelta(seconds=5)  # clock skew allowed on `exp`/`iat`
EXPIRED = "the token has expired; create a new one with `cascade token create`"
PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    role: str  # "admin" | "patient"
    patient: str | None
    token_id: str  # the `jti` claim: rate limits are counted per token
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def parse_duration(text: str) -> timedelta:
    """`30m`, `1h`, `7d` → timedelta (1 second to 366 days)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise TokenError(f"--expires {text!r} is not a duration like 30m, 1h or 7d")
    delta = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if delta <= timedelta(0) or delta > MAX_EXPIRY:
        raise TokenError(f"--expires {text!r} must be between 1s and 366d")
    return delta


def signing_key(settings: Settings | None = None) -> bytes:
    """The HMAC key: `CASCADE_API_SECRET`, else `HOME/api-secret` (created 0600 on first use)."""
    settings = settings or get_settings()
    if settings.api_secret is not None:
        key = settings.api_secret.get_secret_value().encode()
        if len(key) < MIN_KEY_BYTES:
            raise TokenError(f"CASCADE_API_SECRET must be at least {MIN_KEY_BYTES} bytes long")
        return key
    path = settings.api_secret_file
    settings.ensure_home()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    if path.stat().st_mode & 0o077:
        raise TokenError(f"{path} is readable by other users; run `chmod 600 {path}`")
    key = path.read_text().strip().encode()
    if len(key) < MIN_KEY_BYTES:
        raise TokenError(f"{path} holds a key shorter than {MIN_KEY_BYTES} bytes; delete it to make a new one")
    return key


def create_token(
    *,
    patient: str | None = None,
    admin: bool = False,
    expires: str | timedelta = "1h",
    settings: Settings | None = None,
    now: datetime | None = None,
) -> str:
    """A signed token for one patient or for an admin (exactly one of the two)."""
    if admin == (patient is not None):
        raise TokenError("give exactly one of --patient P or --admin")
    if patient is not None and not PATIENT_ID.match(patient):
        raise TokenError(f"patient id {patient!r} must be 1-64 letters, digits, '.', '_' or '-'")
    lifetime = parse_duration(expires) if isinstance(expires, str) else expires
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "admin" if admin else f"patient:{patient}",
        "role": "admin" if admin else "patient",
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if patient is not None:
        claims["patient"] = patient
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM)


def verify_token(token: str, settings: Settings | None = None, key: bytes | None = None) -> Principal:
    """The principal of a valid token; `TokenError` (with a reason safe to show) otherwise."""
    try:
        claims = jwt.decode(
            token,
            key or signing_key(settings),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
            leeway=LEEWAY,
        )
    except jwt.ExpiredSignatureError:
        raise TokenError(EXPIRED) from None
    except jwt.InvalidAudienceError:
        raise TokenError("the token is not meant for this API (wrong audience)") from None
    except jwt.InvalidTokenError:
        raise TokenError("the token is invalid (bad signature, algorithm or claims)") from None
    role = claims.get("role")
    patient = claims.get("patient")
    if role == "admin" and claims.get("sub") == "admin":
        patient = None
    elif role != "patient" or not isinstance(patient, str) or not PATIENT_ID.match(patient):
        raise TokenError("the token is invalid (bad signature, algorithm or claims)")
    return Principal(
        role=str(role),
        patient=patient,
        token_id=str(claims["jti"]),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )


class TokenVerifier:
    """`verify_token` with a small cache of tokens already verified by this process.

    A token's signature and claims never change, so a token seen valid stays valid until it
    expires: a hit only re-checks `exp` (with the same leeway). Only valid tokens are kept (at most
    `size`, least recently used first out), so invalid ones cost a full check every time.
    """

    def __init__(self, key: bytes, size: int = 4096, clock: Callable[[], datetime] | None = None) -> None:
        from collections import OrderedDict

        self.key, self.size = key, size
        self.clock = clock or (lambda: datetime.now(UTC))
        self._seen: OrderedDict[str, Principal] = OrderedDict()

    def __call__(self, token: str) -> Principal:
        who = self._seen.get(token)
        if who is not None:
            if self.clock() > who.expires_at + LEEWAY:
                del self._seen[token]
                raise TokenError(EXPIRED)
            self._seen.move_to_end(token)
            return who
        who = verify_token(token, key=self.key)
        self._seen[token] = who
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return who
