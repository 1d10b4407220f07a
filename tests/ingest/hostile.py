"""A small, real, misbehaving Nightscout server on 127.0.0.1 (importable as `hostile`).

It serves entries and treatments from raw JSON text (so a test can put in what a real server might
send and Python would not produce: integers beyond 64 bits, lone surrogates, invalid UTF-8), and can
misbehave: ignore the `$lte` window, trickle bytes, send a gzip bomb, fail with HTTP 500.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from workbench.ingest.sites import Site


@dataclass
class Behaviour:
    entries: list[str] = field(default_factory=list)  # one raw JSON text per document
    treatments: list[str] = field(default_factory=list)
    mode: str = "normal"  # normal | ignore_lte | trickle | bomb | fail
    bomb_bytes: int = 50_000_000
    requests: int = 0
    served: set[str] = field(default_factory=set)  # every document text sent at least once


def _date_of(raw: str, key: str) -> Any:
    """The document's cursor value (`date` ms or `created_at` text) read without json (big ints)."""
    match = re.search(rf'"{key}"\s*:\s*("[^"]*"|-?\d+)', raw)
    if match is None:
        return None
    value = match.group(1)
    return value.strip('"') if value.startswith('"') else int(value)


def _window(docs: list[str], key: str, query: dict[str, list[str]], honour_lte: bool) -> list[str]:
    gt = query.get(f"find[{key}][$gt]", [None])[0]
    lte = query.get(f"find[{key}][$lte]", [None])[0] if honour_lte else None
    count = int(query.get("count", ["10"])[0])

    def convert(v: str | None) -> Any:
        return None if v is None else (int(float(v)) if key == "date" else v)

    low, high = convert(gt), convert(lte)
    keyed = [(_date_of(d, key), d) for d in docs]
    chosen = [
        (k, d)
        for k, d in keyed
        if k is None
        or (
            (low is None or type(k) is not type(low) or k > low)
            and (high is None or type(k) is not type(high) or k <= high)
        )
    ]
    chosen.sort(key=lambda kd: (kd[0] is not None, kd[0] if kd[0] is not None else 0), reverse=True)
    return [d for _, d in chosen[:count]]


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        b = self.server.behaviour  # type: ignore[attr-defined]
        b.requests += 1
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if b.mode == "fail":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if b.mode == "bomb":
            body = gzip.compress(b"[" + b" " * b.bomb_bytes + b"]", compresslevel=9)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if parts.path.endswith("/entries.json"):
            docs = _window(b.entries, "date", query, honour_lte=b.mode != "ignore_lte")
        elif parts.path.endswith("/treatments.json"):
            docs = _window(b.treatments, "created_at", query, honour_lte=b.mode != "ignore_lte")
        else:
            docs = []
        b.served.update(docs)
        body = ("[" + ",".join(docs) + "]").encode("utf-8", errors="surrogateescape")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if b.mode == "trickle":
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            try:
                for _i in range(0, 1000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def hostile_server(behaviour: Behaviour) -> Iterator[str]:
    """Serve `behaviour` on 127.0.0.1; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.behaviour = behaviour  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def site_for(url: str, site_id: str = "hostile", **overrides: Any) -> Site:
    return Site(site_id=site_id, patient_id=overrides.pop("patient_id", site_id), url=url, **overrides)


def entry(_id: str, date_ms: int, sgv: Any = 120, **extra: Any) -> str:
    """One entry document as JSON text."""
    doc = {"_id": _id, "type": "sgv", "date": date_ms, "sgv": sgv, "direction": "Flat", **extra}
    return json.dumps(doc)
