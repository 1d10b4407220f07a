"""HTTP access to one Nightscout site (REST API v1): auth, retries with backoff, date-window paging.

Paging walks *down* from the newest record, like Nightscout's newest-first ordering: each request
asks for `find[date][$gt]=<since>` (and `$lte=<oldest seen>` after the first page) with `count`.
When a page comes back full, the next window ends at the oldest date of that page, inclusive, so
records that share that millisecond are not lost (the repeats are dropped by `_id`).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from workbench.ingest.errors import NightscoutAuthError, NightscoutResponseError, NightscoutUnavailableError
from workbench.ingest.sites import Site

RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter; `Retry-After` wins when the server sends one."""

    attempts: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 20.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.max_seconds, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.max_seconds, self.base_seconds * 2**attempt) * (0.5 + random.random() / 2)


@dataclass
class FetchStats:
    """Counters for one site and run."""

    requests: int = 0
    retries: int = 0
    fetched: int = 0
    bytes: int = 0


class NightscoutClient:
    """A small Nightscout v1 client. The secret only ever goes into a header or the `token` param."""

    def __init__(
        self,
        site: Site,
        *,
        page_size: int = 10_000,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.site = site.with_secret()
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.stats = FetchStats()
        headers = {"Accept": "application/json", "User-Agent": "cascade-workbench"}
        self._params: dict[str, str] = {}
        secret = self.site.secret
        if secret:
            if self.site.auth == "token":
                self._params["token"] = secret
            else:
                headers["api-secret"] = hashlib.sha1(secret.encode()).hexdigest()
        self._http = httpx.Client(base_url=self.site.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NightscoutClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET `path` with retries; 401/403 and exhausted retries become one-line Cascade errors."""
        query = {**(params or {}), **self._params}
        url = f"{self.site.url}{path}"  # for messages: never includes the query (token)
        last_problem = ""
        for attempt in range(self.retry.attempts):
            self.stats.requests += 1
            try:
                response = self._http.get(path, params=query)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_problem = type(exc).__name__
                retry_after = None
            else:
                if response.status_code in (401, 403):
                    raise NightscoutAuthError(
                        f"Nightscout site {self.site.url} refused access (HTTP {response.status_code}); "
                        + (
                            f"check the secret in {self.site.secret_env}"
                            if self.site.secret_env
                            else "no secret is configured for it (secret_env)"
                        )
                    )
                if response.status_code not in RETRY_STATUS:
                    if response.status_code >= 400:
                        raise NightscoutResponseError(f"Nightscout site {url} answered HTTP {response.status_code}")
                    self.stats.bytes += len(response.content)
                    try:
                        return response.json()
                    except ValueError:
                        raise NightscoutResponseError(f"Nightscout site {url} did not return JSON") from None
                last_problem = f"HTTP {response.status_code}"
                retry_after = response.headers.get("Retry-After")
            if attempt + 1 < self.retry.attempts:
                self.stats.retries += 1
                time.sleep(self.retry.delay(attempt, retry_after))
        raise NightscoutUnavailableError(
            f"Nightscout site {url} kept failing ({last_problem}) after {self.retry.attempts} attempts"
        )

    def pages(
        self, path: str, field: str, since: int | str | None, extra: dict[str, Any] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of documents with `field` > `since`, newest first, each page a list of documents.

        `field` is `date` (epoch ms) for entries or `created_at` (ISO string) for treatments.
        """
        upper: Any = None
        seen_at_upper: set[str] = set()
        while True:
            params: dict[str, Any] = {"count": self.page_size, **(extra or {})}
            if since is not None:
                params[f"find[{field}][$gt]"] = since
            if upper is not None:
                params[f"find[{field}][$lte]"] = upper
            page = self.get_json(path, params)
            if not isinstance(page, list):
                raise NightscoutResponseError(f"Nightscout site {self.site.url}{path} did not return a list")
            fresh = [d for d in page if not (isinstance(d, dict) and str(d.get("_id")) in seen_at_upper)]
            self.stats.fetched += len(fresh)
            if fresh:
                yield fresh
            if len(page) < self.page_size:
                return
            oldest = _oldest(page, field)
            if oldest is None or (oldest == upper and not fresh):
                raise NightscoutResponseError(
                    f"Nightscout site {self.site.url}: more than {self.page_size} records share "
                    f"{field}={oldest}; raise the page size"
                )
            if oldest != upper:
                seen_at_upper = set()
            upper = oldest
            seen_at_upper |= {str(d.get("_id")) for d in page if isinstance(d, dict) and d.get(field) == oldest}


def _oldest(page: list[Any], field: str) -> Any:
    """The smallest comparable `field` value in a page (ignoring malformed documents)."""
    values = [d.get(field) for d in page if isinstance(d, dict)]
    if field == "date":
        numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        return int(min(numeric)) if numeric else None
    strings = [v for v in values if isinstance(v, str)]
    return min(strings) if strings else None
