"""The metrics endpoint: /metrics (Prometheus text) and /healthz (JSON), on Starlette
served by hypercorn's trio worker, off the switch's hot path.

The socket is bound here first, so a port in use is one line naming the address
(`MetricsUnavailable`) before hypercorn starts, and port 0 (tests) reports the
port it got. /healthz answers 200 while the switch can serve (`switch.health`),
else 503, and says why in either case.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from typing import Any, cast

import hypercorn.config
import hypercorn.trio
import structlog
import trio
from hypercorn.typing import Framework
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = structlog.get_logger("forecourt.metrics")

HealthReport = Callable[[], dict[str, Any]]


class MetricsUnavailable(Exception):
    """The metrics address cannot be bound (in use, not this host's, no permission)."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        reason = error.strerror or type(error).__name__
        super().__init__(
            f"metrics: cannot listen on {host}:{port}: {reason} (another program holds"
            " the port? change [metrics] port, or 0 for no endpoint)"
        )


def metrics_app(registry: CollectorRegistry, health: HealthReport) -> Starlette:
    """GET/HEAD /metrics and /healthz; other paths 404, other methods 405."""

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        try:
            report = health()
        except Exception as exc:  # the report itself failed: unhealthy, and say so
            report = {"status": "unhealthy", "code": 503, "reasons": [type(exc).__name__]}
        return JSONResponse(report, status_code=int(report.get("code", 503)))

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
        ]
    )


def bind(host: str, port: int) -> socket.socket:
    """The endpoint's listening socket, bound now so a refusal names the address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise MetricsUnavailable(host, port, exc) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise MetricsUnavailable(host, port, exc) from None
    return sock


async def serve_metrics(
    host: str,
    port: int,
    registry: CollectorRegistry,
    health: HealthReport,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port (port 0: an ephemeral one)."""
    sock = bind(host, port)
    bound = int(sock.getsockname()[1])
    config = hypercorn.config.Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn takes the socket over
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 5.0
    config.h11_max_incomplete_size = 8192
    app = cast(Framework, metrics_app(registry, health))
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(hypercorn.trio.serve, app, config))
        log.info("metrics_listening", url=f"http://{host}:{bound}/metrics", health="/healthz")
        task_status.started(bound)
