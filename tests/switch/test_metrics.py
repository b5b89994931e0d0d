"""Metrics: dedicated registries, and the HTTP endpoint (Starlette on hypercorn's trio
worker) over a real socket."""

from __future__ import annotations

import json
from typing import Any

import trio
from forecourt.switch.metrics import SwitchMetrics
from forecourt.switch.metrics_endpoint import serve_metrics

OK: dict[str, Any] = {"status": "ok", "code": 200, "reasons": []}
DOWN: dict[str, Any] = {"status": "unhealthy", "code": 503, "reasons": ["no acquirer link is up"]}


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = b""
        try:
            while chunk := await stream.receive_some(65536):
                data += chunk
        except trio.BrokenResourceError:  # the server closed with our bytes unread
            if not data:
                return 0, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    return await http(port, f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())


def test_registries_are_independent() -> None:
    a, b = SwitchMetrics(), SwitchMetrics()
    a.count_message("from_terminal", "1200")
    assert b"forecourt_messages_total{" in a.render()
    assert b"forecourt_messages_total{" not in b.render()


async def test_metrics_and_healthz_over_a_socket() -> None:
    metrics = SwitchMetrics()
    metrics.count_message("to_terminal", "1210", "000")
    metrics.count_message("to_terminal", "1210", "000")
    metrics.switch_latency.observe(0.0003)
    metrics.host_latency.labels(link="bank").observe(0.2)
    metrics.in_flight.inc()
    metrics.connections.labels(listener="indoor").set(3)
    metrics.set_link_state("bank", "up")
    metrics.saf_depth.labels(link="bank").set(2)
    metrics.mac_failures.labels(side="terminal").inc()
    metrics.malformed.labels(side="terminal", reason="frame_too_large").inc()
    health = {"report": OK}

    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            serve_metrics, "127.0.0.1", 0, metrics.registry, lambda: health["report"]
        )
        status, headers, body = await get(port, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert int(headers["content-length"]) == len(body)
        text = body.decode()
        assert (
            'forecourt_messages_total{action_code="000",direction="to_terminal",mti="1210"} 2.0'
            in text
        )
        assert 'forecourt_switch_latency_seconds_bucket{le="0.0005"} 1.0' in text
        assert 'forecourt_host_latency_seconds_bucket{le="0.25",link="bank"} 1.0' in text
        assert "forecourt_in_flight 1.0" in text
        assert 'forecourt_connections{listener="indoor"} 3.0' in text
        assert (
            'forecourt_acquirer_link_state{forecourt_acquirer_link_state="up",link="bank"} 1.0'
            in text
        )
        assert 'forecourt_saf_depth{link="bank"} 2.0' in text
        assert 'forecourt_mac_failures_total{side="terminal"} 1.0' in text
        assert 'forecourt_malformed_frames_total{reason="frame_too_large",side="terminal"}' in text

        status, headers, body = await get(port, "/healthz")
        assert (status, headers["content-type"], json.loads(body)) == (200, "application/json", OK)
        health["report"] = DOWN
        status, _, body = await get(port, "/healthz")
        assert (status, json.loads(body)["reasons"]) == (503, ["no acquirer link is up"])

        def broken() -> dict[str, Any]:
            raise RuntimeError("probe failed")

        assert (await get(port, "/nowhere"))[0] == 404
        assert (await http(port, b"POST /metrics HTTP/1.0\r\n\r\n"))[0] == 405
        assert (await http(port, b"garbage\r\n\r\n"))[0] == 400
        status, _, body = await http(port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
        assert status == 200 and body == b""
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_metrics, "127.0.0.1", 0, metrics.registry, broken)
        status, _, body = await get(port, "/healthz")
        assert (status, json.loads(body)["reasons"]) == (503, ["RuntimeError"])
        nursery.cancel_scope.cancel()


async def test_oversized_request_is_refused() -> None:
    metrics = SwitchMetrics()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_metrics, "127.0.0.1", 0, metrics.registry, lambda: OK)
        status, _, _ = await http(port, b"GET /metrics HTTP/1.0\r\nX: " + b"a" * 20000)
        assert status in (431, 400, 0)  # too large, or a reset when the rest was still unread
        assert (await get(port, "/healthz"))[0] == 200  # and the server goes on
        nursery.cancel_scope.cancel()
