"""Device status reports (1624/670, 48-18): journalled per terminal, a gauge per
terminal and device, and shown by `forecourt terminals` (run as an operator does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import trio
from forecourt.switch.journal import open_journal

from tests.switch.harness import SwitchUnderTest, _unused_port, started_switch
from tests.terminals.messages import cashier_sign_on, device_status


async def _metrics(sut: SwitchUnderTest) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{sut.running.metrics_port}/metrics")).text


def _terminals_cli(sut: SwitchUnderTest, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`forecourt terminals --config` in a subprocess, the LMK in its environment as an
    operator's shell would hold it (the test's key store has no LMK file)."""
    config = tmp_path / "forecourt.toml"
    config.write_text(f'data_dir = "{sut.config.data_dir}"\n', encoding="utf-8")
    assert sut._lmk is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORECOURT_")}
    env["FORECOURT_LMK"] = sut._lmk.key.hex()
    return subprocess.run(
        [sys.executable, "-m", "forecourt.switch.cli", "terminals", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


async def test_a_report_is_journalled_in_the_metrics_and_listed(tmp_path: Path) -> None:
    async with started_switch(tmp_path, metrics_port=_unused_port()) as sut:
        async with sut.terminal() as terminal:
            await terminal.sign_on()
            await terminal.exchange(cashier_sign_on(terminal, "CASH01"))
            answer = await terminal.exchange(device_status(terminal, "0201"))
            assert (answer.mti, answer.fields["39"]) == ("1634", "000")
            assert answer.raw is not None and terminal.tak is not None
            assert terminal.tak.verify(answer.raw[:-8], answer.raw[-8:])
            text = await _metrics(sut)
            for device, state in (("card_reader", 0), ("printer", 2), ("pump_link", 1)):
                assert (
                    f'forecourt_terminal_device_state{{device="{device}",terminal_id="T0000001"}}'
                    f" {state}.0"
                ) in text
            # the last report wins
            await terminal.exchange(device_status(terminal, "0009"))
            assert (
                'forecourt_terminal_device_state{device="pump_link",terminal_id="T0000001"} 9.0'
                in await _metrics(sut)
            )
        listed = await _list_from_a_subprocess(sut, tmp_path)
        # a restart shows the journal's last report again, before any new one
        await sut.restart()
        assert (
            'forecourt_terminal_device_state{device="pump_link",terminal_id="T0000001"} 9.0'
            in await _metrics(sut)
        )
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if "T0000001" in line]
    assert "CASH01" in row and "pump_link not fitted" in row and "TAK v2" in row
    assert [line for line in listed.stdout.splitlines() if "T0000002" in line]  # never seen
    async with open_journal(tmp_path / "journal.db") as journal:
        rows = await journal.view("SELECT terminal_id, status FROM terminal_devices")
    assert rows == [{"terminal_id": "T0000001", "status": "0009"}]


async def _list_from_a_subprocess(
    sut: SwitchUnderTest, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return await trio.to_thread.run_sync(_terminals_cli, sut, tmp_path)


async def test_an_unreadable_report_is_a_format_error(tmp_path: Path) -> None:
    async with started_switch(tmp_path, metrics_port=_unused_port()) as sut:
        async with sut.terminal() as terminal:
            answer = await terminal.exchange(device_status(terminal, "0300"))
            assert answer.fields["39"] == "904"
            assert (await terminal.exchange(terminal.purchase(1000))).fields["39"] == "000"
        text = await _metrics(sut)
    assert 'forecourt_malformed_frames_total{reason="device_status",side="terminal"} 1.0' in text
    assert "forecourt_terminal_device_state{" not in text
