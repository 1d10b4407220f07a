"""Serve the generated dbt docs over HTTP on 127.0.0.1 (the docs page fetches manifest.json and
catalog.json, which browsers refuse from file://). Private like every Cascade server: loopback only
and a random token; the first request carries it (`?token=…`) and gets a cookie for the rest."""

from __future__ import annotations

import functools
import hmac
import secrets
from http.cookies import SimpleCookie
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
COOKIE = "cascade_docs_token"


class _Handler(SimpleHTTPRequestHandler):
    token = ""

    def _authorised(self) -> bool:
        query = parse_qs(urlsplit(self.path).query)
        given = (query.get("token") or [""])[-1]
        if given and hmac.compare_digest(given, self.token):
            self._set_cookie = True
            return True
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        value = cookie[COOKIE].value if COOKIE in cookie else ""
        return bool(value) and hmac.compare_digest(value, self.token)

    def end_headers(self) -> None:
        if getattr(self, "_set_cookie", False):
            self.send_header("Set-Cookie", f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/")
        super().end_headers()

    def do_GET(self) -> None:
        if not self._authorised():
            self.send_error(403, "open the URL with its ?token= printed by `cascade transform docs --serve`")
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if not self._authorised():
            self.send_error(403)
            return
        super().do_HEAD()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no token in logs
        pass


def make_server(folder: Path, port: int = 0, token: str | None = None) -> tuple[ThreadingHTTPServer, str]:
    """A server for `folder` on 127.0.0.1:`port` (0 = a free one) and its URL with the token."""
    token = token or secrets.token_urlsafe(24)
    handler = type("DocsHandler", (_Handler,), {"token": token})
    server = ThreadingHTTPServer((HOST, port), functools.partial(handler, directory=str(folder)))
    return server, f"http://{HOST}:{server.server_address[1]}/index.html?token={token}"
