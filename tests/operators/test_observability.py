"""Observability of a running switch: /healthz says why in JSON, the links set
`forecourt_acquirer_link_state`, the metrics address and connect failures are
logged with what an operator needs, and repeated refusals are one line per
interval with their count (the metric counts each).

In-process switch on real sockets (tests/switch/harness.py), its metrics endpoint
on a real port, read over HTTP.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import structlog
import trio

from tests.operators.cli_runs import free_port
from tests.switch.harness import started_switch


async def _get(port: int, path: str) -> tuple[int, bytes]:
    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())

    return await trio.to_thread.run_sync(fetch)


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def _events(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == event]


async def test_link_down_healthz_says_why_and_the_state_metric_follows(tmp_path: Path) -> None:
    metrics_port = free_port()
    with structlog.testing.capture_logs() as logs:
        async with started_switch(tmp_path, link_up=False, metrics_port=metrics_port) as sut:
            host_port = sut.config.acquirers[0].port
            with trio.fail_after(10):
                while not _events(logs, "acquirer_connect_failed"):
                    await trio.sleep(0.05)
            status, body = await _get(metrics_port, "/healthz")
            report = json.loads(body)
            assert status == 503 and report["status"] == "unhealthy" and report["code"] == 503
            assert report["listeners"] == {"pos": "up"}
            assert report["journal"] == {"writable": True}
            bank = report["links"]["bank"]
            assert bank["state"] in ("down", "connecting") and bank["available"] is False
            assert bank["last_error"] == f"connect to 127.0.0.1:{host_port}: Connection refused"
            assert report["reasons"] == [f"no acquirer link is up: bank {bank['state']}"]

            _, text = await _get(metrics_port, "/metrics")
            states = {
                s: _sample(text.decode(), "forecourt_acquirer_link_state", link="bank", **{
                    "forecourt_acquirer_link_state": s
                })
                for s in ("up", "down", "connecting")
            }  # fmt: skip
            assert states["up"] == 0.0 and states["down"] + states["connecting"] == 1.0  # type: ignore[operator]
    failed = _events(logs, "acquirer_connect_failed")[0]
    assert (failed["host"], failed["port"], failed["reason"]) == (
        "127.0.0.1",
        host_port,
        "Connection refused",
    )
    (listening,) = _events(logs, "metrics_listening")
    assert listening["url"] == f"http://127.0.0.1:{metrics_port}/metrics"


async def test_link_up_healthz_200_and_state_up(tmp_path: Path) -> None:
    metrics_port = free_port()
    async with started_switch(tmp_path, metrics_port=metrics_port):
        status, body = await _get(metrics_port, "/healthz")
        report = json.loads(body)
        assert (status, report["status"], report["reasons"]) == (200, "ok", [])
        assert report["links"]["bank"] == {"state": "up", "available": True}
        _, text = await _get(metrics_port, "/metrics")
        labels = {"link": "bank", "forecourt_acquirer_link_state": "up"}
        assert _sample(text.decode(), "forecourt_acquirer_link_state", **labels) == 1.0


async def test_unknown_terminal_flood_is_one_line_with_a_count(tmp_path: Path) -> None:
    metrics_port = free_port()
    flood = 60
    with structlog.testing.capture_logs() as logs:
        async with started_switch(tmp_path, metrics_port=metrics_port) as sut:
            async with sut.terminal("T0000777") as stranger:
                for _ in range(flood):
                    answer = await stranger.exchange(stranger.purchase(1000))
                    assert answer.fields["39"] == "109"
            _, text = await _get(metrics_port, "/metrics")
            counted = _sample(
                text.decode(), "forecourt_rejections_total", reason="unknown_terminal"
            )
            assert counted == flood
    lines = _events(logs, "unknown_terminal")
    assert len(lines) == 2, lines  # the first at once, the rest as one count at the stop
    assert lines[0]["terminal_id"] == "T0000777" and "repeated" not in lines[0]
    assert lines[1]["repeated"] == flood - 1 and lines[1]["within_s"] == 10.0
