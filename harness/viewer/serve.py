"""Serving a built site on 127.0.0.1 (a free port), computing comparisons the site does not hold yet."""

from __future__ import annotations

import functools
import json
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from harness.history.index import HistoryIndex
from harness.viewer.build import COMPARE_INDEX, compare_key, write_compare


class _Handler(SimpleHTTPRequestHandler):
    reports_root: Path
    site: Path
    lock: threading.Lock

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # a page load is dozens of requests: the terminal shows only the URL

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        url = urlparse(self.path)
        if url.path != "/api/compare":
            super().do_GET()
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        suite, run_a, run_b = query.get("suite", ""), query.get("a", ""), query.get("b", "")
        known = {r["run_id"] for r in HistoryIndex(self.reports_root).runs(suite)} if suite else set()
        if run_a not in known or run_b not in known:  # only runs the index knows: no paths from the URL
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no runs {run_a!r} and {run_b!r} of suite {suite!r}"})
            return
        key = (suite, run_a, run_b, query.get("va", ""), query.get("vb", ""))
        try:
            with self.lock:
                rel = write_compare(self.site, self.reports_root, *key)
                index_path = self.site / COMPARE_INDEX
                compares = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else {}
                compares[compare_key(*key)] = rel
                index_path.write_text(json.dumps(compares), encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - shown on the page, the server keeps serving
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._json(HTTPStatus.OK, {"path": rel})

    def _json(self, status: HTTPStatus, data: object) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def make_server(site: Path, reports_root: Path, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``site`` on 127.0.0.1; port 0 picks a free one (``server.server_address[1]``)."""
    handler = type("Handler", (_Handler,), {"reports_root": reports_root, "site": site, "lock": threading.Lock()})
    return ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(site)))
