"""HTTP access to one Nightscout site (REST API v1): auth, retries with backoff, date-window paging.

Paging walks *down* from the newest record, like Nightscout's newest-first ordering: each request
asks for `find[date][$gt]=<since>` (and `$lte=<oldest seen>` after the first page) with `count`.
When a page comes back full, the next window ends at the oldest date of that page, inclusive, so
records that share that millisecond are not lost (the repeats are dropped by `_id`).

Bounded: paging stops when a page brings no document not seen before (a server that ignores the
window would otherwise be asked forever); every site has an overall deadline and every response a
maximum decompressed size (`CASCADE_INGEST_DEADLINE_SECONDS`, `CASCADE_INGEST_MAX_RESPONSE_MB`),
each a one-line `FetchLimitError`. Bodies are parsed with the standard library: integers of any
size and invalid UTF-8 (kept as lone surrogates) reach validation, which quarantines them.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from workbench.ingest.errors import (
    FetchLimitError,
    NightscoutAuthError,
    NightscoutResponseError,
    NightscoutUnavailableError,
)
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
    notes: list[str] | None = None  # e.g. paging stopped because a page brought nothing new

    def note(self, text: str) -> None:
        self.notes = [*(self.notes or []), text]


class NightscoutClient:
    """A small Nightscout v1 client. The secret only ever goes into a header or the `token` param."""

    def __init__(
        self,
        site: Site,
        *,
        page_size: int = 10_000,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        deadline_s: float = 1800.0,
        max_response_bytes: int = 256_000_000,
    ) -> None:
        self.site = site.with_secret()
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.stats = FetchStats()
        self.timeout = timeout
        self.deadline_s = deadline_s
        self.max_response_bytes = max_response_bytes
        self._deadline = time.monotonic() + deadline_s
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

    def _remaining(self, url: str) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise FetchLimitError(
                f"Nightscout site {url} took longer than the per-site deadline of {self.deadline_s:g} s; "
                "raise CASCADE_INGEST_DEADLINE_SECONDS if the site is just slow"
            )
        return left

    def _read(self, response: httpx.Response, url: str) -> Any:
        """The decompressed body, bounded in size and time, parsed as JSON."""
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > self.max_response_bytes:
                raise FetchLimitError(
                    f"Nightscout site {url} sent more than {self.max_response_bytes / 1e6:g} MB in one response "
                    "(decompressed); raise CASCADE_INGEST_MAX_RESPONSE_MB or lower the page size"
                )
            self._remaining(url)
        self.stats.bytes += len(body)
        try:
            return json.loads(body.decode("utf-8", errors="surrogateescape"))
        except (ValueError, RecursionError):
            raise NightscoutResponseError(f"Nightscout site {url} did not return JSON") from None

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET `path` with retries; 401/403, exhausted retries and fetch limits become one-line errors."""
        query = {**(params or {}), **self._params}
        url = f"{self.site.url}{path}"  # for messages: never includes the query (token)
        last_problem = ""
        for attempt in range(self.retry.attempts):
            self.stats.requests += 1
            timeout = min(self.timeout, self._remaining(url))
            retry_after = None
            try:
                with self._http.stream("GET", path, params=query, timeout=timeout) as response:
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
                        return self._read(response, url)
                    last_problem = f"HTTP {response.status_code}"
                    retry_after = response.headers.get("Retry-After")
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_problem = type(exc).__name__
            if attempt + 1 < self.retry.attempts:
                self.stats.retries += 1
                time.sleep(min(self.retry.delay(attempt, retry_after), self._remaining(url)))
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
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"count": self.page_size, **(extra or {})}
            if since is not None:
                params[f"find[{field}][$gt]"] = since
            if upper is not None:
                params[f"find[{field}][$lte]"] = upper
            page = self.get_json(path, params)
            if not isinstance(page, list):
                raise NightscoutResponseError(f"Nightscout site {self.site.url}{path} did not return a list")
            identities = [_identity(doc) for doc in page]
            # documents earlier pages did not bring (a repeat within one page is kept: it is counted
            # as a duplicate and landed once)
            fresh = [doc for doc, identity in zip(page, identities, strict=True) if identity not in seen]
            seen.update(identities)
            self.stats.fetched += len(fresh)
            if fresh:
                yield fresh
            if len(page) < self.page_size:
                return
            oldest = _oldest(page, field)
            if oldest is None:
                raise NightscoutResponseError(
                    f"Nightscout site {self.site.url}{path}: a full page without any usable {field}; "
                    "check the site's data"
                )
            if not fresh:
                if all(isinstance(d, dict) and d.get(field) == oldest for d in page):
                    raise NightscoutResponseError(
                        f"Nightscout site {self.site.url}: more than {self.page_size} records share "
                        f"{field}={oldest}; raise the page size"
                    )
                # the server ignores the window (e.g. `$lte`): nothing newer will come
                self.stats.note(f"{path}: paging stopped, a full page brought no new document (the site ignores $lte)")
                return
            upper = oldest


def _identity(doc: Any) -> str:
    """What makes a document the same one on another page: its `_id`, else its content."""
    if isinstance(doc, dict) and isinstance(doc.get("_id"), str):
        return "id:" + doc["_id"]
    return "doc:" + hashlib.sha1(json.dumps(doc, sort_keys=True, ensure_ascii=True, default=repr).encode()).hexdigest()


def _oldest(page: list[Any], field: str) -> Any:
    """The smallest comparable `field` value in a page (ignoring malformed documents)."""
    values = [d.get(field) for d in page if isinstance(d, dict)]
    if field == "date":
        numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        return int(min(numeric)) if numeric else None
    strings = [v for v in values if isinstance(v, str)]
    return min(strings) if strings else None
