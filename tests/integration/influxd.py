"""A private influxd 1.x, and the shim through which influxdb-client's v2 write API reaches it.

Debian ships influxd 1.6, which speaks only the v1 HTTP API (``/write``, ``/query``, ``/ping``);
InfluxDB 2 cannot be installed here, and 1.6 predates 1.8's v2-compatible ``/api/v2/write``. So
the tests put a small HTTP shim in front: it takes the v2 write the recorder sends
(``POST /api/v2/write?org=..&bucket=..&precision=ns``, gzip body, ``Authorization: Token ..``),
forwards the body unchanged (gzip and all) to ``/write?db=<bucket>&precision=n`` and hands back
influxd's status and error, or 503 when influxd does not answer, as an InfluxDB 2 behind a proxy
would. Everything past the HTTP envelope (line protocol parsing, field type conflicts, one point
per series and timestamp, partial writes) is the real engine's.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import free_port, wait_for_port

_PRECISIONS = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}


@dataclass
class Influxd:
    """An influxd process with its own directory and port; stop/start keep its data."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> Path:
        path = self.directory / "influxdb.conf"
        path.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{self.directory}/meta"
[data]
  dir = "{self.directory}/data"
  wal-dir = "{self.directory}/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
"""
        )
        return path

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["influxd", "-config", str(self.config())],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "influxd.log").open("ab"),
        )
        wait_for_port(self.port, timeout=20)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as answer:  # noqa: S310
                    if answer.status == 204:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("influxd did not answer /ping")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run an InfluxQL statement through /query; return the decoded answer."""
        params = {"q": q} | ({"db": db} if db else {})
        request = urllib.request.Request(  # noqa: S310 (always http://127.0.0.1)
            f"{self.url}/query?" + urllib.parse.urlencode(params), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            result: dict[str, Any] = json.loads(answer.read())
        return result

    def rows(self, db: str, q: str) -> list[list[Any]]:
        """Return the values of the first series a SELECT answers (empty when none)."""
        result = self.query(q, db)["results"][0]
        series = result.get("series")
        if not series:
            return []
        values: list[list[Any]] = series[0]["values"]
        return values


class V2Shim:
    """A threaded HTTP server speaking the v2 write endpoint in front of an ``Influxd``."""

    def __init__(self, influxd: Influxd) -> None:
        self.influxd = influxd
        self.writes = 0
        self.deletes = 0
        shim = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/api/v2/delete":
                    return self._delete(url)
                if url.path != "/api/v2/write":
                    return self._answer(404, {"code": "not found", "message": url.path})
                query = urllib.parse.parse_qs(url.query)
                bucket = query.get("bucket", [""])[0]
                precision = _PRECISIONS.get(query.get("precision", ["ns"])[0], "n")
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                target = f"{shim.influxd.url}/write?" + urllib.parse.urlencode(
                    {"db": bucket, "precision": precision}
                )
                headers = {"Content-Type": "text/plain; charset=utf-8"}
                if self.headers.get("Content-Encoding"):
                    headers["Content-Encoding"] = self.headers["Content-Encoding"]
                request = urllib.request.Request(target, data=body, headers=headers)  # noqa: S310
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                        shim.writes += 1
                        return self._answer(answer.status, None)
                except urllib.error.HTTPError as exc:
                    text = exc.read().decode(errors="replace")
                    try:
                        message = json.loads(text).get("error", text)
                    except ValueError:
                        message = text
                    return self._answer(exc.code, {"code": "invalid", "message": message})
                except (urllib.error.URLError, OSError) as exc:
                    return self._answer(503, {"code": "unavailable", "message": str(exc)})

            def _delete(self, url: urllib.parse.SplitResult) -> None:
                # InfluxDB 2's delete (start, stop, a predicate of tag = value terms) as
                # InfluxQL's DELETE, which 1.6 has: the same points go.
                bucket = urllib.parse.parse_qs(url.query).get("bucket", [""])[0]
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                measurement, terms = "", []
                for term in body.get("predicate", "").split(" AND "):
                    key, _, value = term.partition("=")
                    if key == "_measurement":
                        measurement = value.strip('"')
                    else:
                        terms.append(f"\"{key}\" = '{value.strip(chr(34))}'")
                terms += [f"time >= '{body['start']}'", f"time <= '{body['stop']}'"]
                where = " AND ".join(terms)
                statement = f'DELETE FROM "{measurement}" WHERE {where}'  # noqa: S608 (a test's)
                try:
                    shim.influxd.query(statement, bucket)
                except (urllib.error.URLError, OSError) as exc:
                    return self._answer(503, {"code": "unavailable", "message": str(exc)})
                shim.deletes += 1
                return self._answer(204, None)

            def _answer(self, status: int, body: dict[str, str] | None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> V2Shim:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
