"""1987 terminals and hosts, metrics and health, and no PAN in logs or journal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import structlog
import trio
from forecourt.switch.log import configure_logging

from tests.switch.harness import TEST_PAN, started_switch


@pytest.mark.parametrize("dialect", ["iso87ascii", "iso87bcd"])
async def test_1987_terminals_without_mac(tmp_path: Path, dialect: str) -> None:
    async with started_switch(tmp_path, dialect=dialect, mac=False) as sut, sut.terminal() as t:
        t.tak = None  # a legacy terminal sends no MAC
        approved = await t.exchange(t.purchase(2500))
        assert approved.mti == "0210"
        assert approved.fields["39"] == "00"
        declined = await t.exchange(t.purchase(100000))
        assert declined.fields["39"] == "05"
        timed_out_stan = t.next_stan()
        partial = await t.exchange(t.purchase(400000, stan=timed_out_stan))
        assert partial.fields["39"] == "10"
        assert {m.mti for m in sut.host.received} >= {"0200"}


async def test_1993_terminal_to_1987_host(tmp_path: Path) -> None:
    async with (
        started_switch(tmp_path, dialect="ifsf", host_dialect="iso87ascii") as sut,
        sut.terminal() as t,
    ):
        approved = await t.exchange(t.purchase(2500))
        assert approved.mti == "1210"
        assert approved.fields["39"] == "000"
        declined = await t.exchange(t.purchase(100000))
        assert declined.fields["39"] == "100"
        assert [m.mti for m in sut.host.received if m.mti != "0800"] == ["0200", "0200"]


async def _http_get(port: int, path: str) -> tuple[int, str]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


async def test_metrics_and_healthz(tmp_path: Path) -> None:
    from tests.switch.harness import _unused_port

    port = _unused_port()
    async with started_switch(tmp_path, metrics_port=port) as sut, sut.terminal() as t:
        assert (await t.exchange(t.purchase(900))).fields["39"] == "000"
        status, _ = await _http_get(port, "/healthz")
        assert status == 200
        status, text = await _http_get(port, "/metrics")
        assert status == 200
        assert (
            'forecourt_messages_total{action_code="000",direction="to_terminal",mti="1210"} 1.0'
            in text
        )
        assert "forecourt_switch_latency_seconds_count 1.0" in text
        assert 'forecourt_acquirer_link_connections{link="bank"} 2.0' in text


async def test_healthz_is_503_without_a_connected_link(tmp_path: Path) -> None:
    from tests.switch.harness import _unused_port

    port = _unused_port()
    async with started_switch(tmp_path, metrics_port=port, link_up=False):
        status, _ = await _http_get(port, "/healthz")
        assert status == 503


async def test_no_pan_in_logs_or_journal(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    try:
        async with started_switch(tmp_path, request_timeout_s=0.3) as sut, sut.terminal() as t:
            await t.exchange(t.purchase(100))
            await t.exchange(t.purchase(100000))
            await t.exchange(t.purchase(300000))  # timeout path
            request = t.purchase(100)
            await t.send(request, mac=False)  # MAC failure path
            await t.receive()
    finally:
        structlog.reset_defaults()
    text = out.getvalue()
    assert "transaction" in text  # the log was really captured
    assert TEST_PAN not in text
    for name in ("journal.db", "journal.db-wal"):
        path = tmp_path / name
        if path.exists():
            assert TEST_PAN.encode() not in path.read_bytes()
