"""Plain HTTP on the WebSocket port: health, readiness and the dashboard's files.

Routes (add one by putting a handler in `HttpRoutes.routes`):
- GET /healthz: 200 "ok" while the process serves.
- GET /readyz: 200 when at least one collector stream is live, else 503.
- GET /metrics: Prometheus text format (bridge/prometheus.py), when given.
- GET / and GET /<file>: files from the static directory (`/` is index.html),
  with their content type; 404 for anything missing or outside the directory.
A request that asks to upgrade to WebSocket never reaches these routes.
"""

from __future__ import annotations

import http
import mimetypes
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from bridge.prometheus import CONTENT_TYPE as METRICS_CONTENT_TYPE

__all__ = [
    "DEFAULT_STATIC_DIR",
    "Handler",
    "HttpRoutes",
    "respond",
    "text",
]


Handler = Callable[[Request], Response]

# The dashboard bundle (`make web-build`), shipped in the wheel as package data.
DEFAULT_STATIC_DIR = Path(__file__).resolve().parent / "dashboard"
MAX_STATIC_BYTES = 16 * 1024 * 1024


def respond(
    status: http.HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    headers = Headers(
        [
            ("Date", formatdate(usegmt=True)),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def text(status: http.HTTPStatus, message: str) -> Response:
    return respond(status, (message + "\n").encode())


class HttpRoutes:
    """The HTTP side of the bridge's port; `is_ready` says whether an upstream is live."""

    def __init__(
        self,
        static_dir: Path,
        is_ready: Callable[[], bool],
        metrics: Callable[[], bytes] | None = None,
    ) -> None:
        self.static_dir = static_dir.resolve()
        self.is_ready = is_ready
        self.metrics = metrics
        self.routes: dict[str, Handler] = {
            "/healthz": self.healthz,
            "/readyz": self.readyz,
        }
        if metrics is not None:
            self.routes["/metrics"] = self.metrics_text

    def handle(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        handler = self.routes.get(path)
        if handler is not None:
            return handler(request)
        return self.static(path)

    def healthz(self, request: Request) -> Response:
        return text(http.HTTPStatus.OK, "ok")

    def readyz(self, request: Request) -> Response:
        if self.is_ready():
            return text(http.HTTPStatus.OK, "ready")
        return text(http.HTTPStatus.SERVICE_UNAVAILABLE, "no collector stream is live")

    def metrics_text(self, request: Request) -> Response:
        assert self.metrics is not None
        return respond(http.HTTPStatus.OK, self.metrics(), METRICS_CONTENT_TYPE)

    def static(self, path: str) -> Response:
        relative = unquote(path).lstrip("/") or "index.html"
        try:
            target = (self.static_dir / relative).resolve()
        except (OSError, ValueError):
            return text(http.HTTPStatus.NOT_FOUND, "not found")
        if not target.is_relative_to(self.static_dir) or not target.is_file():
            return text(http.HTTPStatus.NOT_FOUND, "not found")
        if target.stat().st_size > MAX_STATIC_BYTES:
            return text(http.HTTPStatus.NOT_FOUND, "not found")
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in (
            "application/javascript",
            "application/json",
        ):
            content_type += "; charset=utf-8"
        return respond(http.HTTPStatus.OK, target.read_bytes(), content_type)
