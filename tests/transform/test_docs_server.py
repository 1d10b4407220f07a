"""`cascade transform docs --serve`: the docs folder over real HTTP on 127.0.0.1, token first, then a cookie."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from workbench.transform.docs_server import make_server


def test_docs_are_served_on_loopback_with_a_token(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html>dbt docs</html>")
    (tmp_path / "catalog.json").write_text('{"nodes": {}}')
    server, url = make_server(tmp_path, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert url.startswith("http://127.0.0.1:") and "token=" in url
        base = url.split("/index.html")[0]
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(base + "/catalog.json", timeout=10)
        assert info.value.code == 403
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "/index.html?token=wrong", timeout=10)
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert b"dbt docs" in resp.read()
            cookie = resp.headers["Set-Cookie"].split(";")[0]
        # the page's own fetches carry the cookie, not the token
        request = urllib.request.Request(base + "/catalog.json", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.read() == b'{"nodes": {}}'
    finally:
        server.shutdown()
        server.server_close()
