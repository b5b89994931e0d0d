"""EFT registration (1804/882): a pending terminal binds its serial number with a
one-time activation code; a used, expired or wrong code is refused, wrong ones counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from forecourt.codecs.field48 import decode_field48
from forecourt.switch.flows import registration as registration_flow
from forecourt.switch.journal import open_journal
from forecourt.switch.terminals.registration import add_pending

from tests.switch.harness import SwitchUnderTest, _unused_port, started_switch
from tests.terminals.messages import registration


async def _pending(sut: SwitchUnderTest, terminal_id: str, **options: Any) -> str:
    """What `forecourt terminals add-pending` does, from the test (the CLI's own test
    runs it as a subprocess)."""
    expires_in_s = float(options.pop("expires_in_s", 3600.0))
    async with open_journal(sut.config) as journal:
        return await add_pending(
            journal, terminal_id, actor="test", expires_in_s=expires_in_s, **options
        )


async def _row(path: Path, terminal_id: str) -> dict[str, object]:
    async with open_journal(path / "journal.db") as journal:
        (row,) = await journal.view(
            "SELECT * FROM terminal_registrations WHERE terminal_id = ?", (terminal_id,)
        )
    return row


async def _metric(sut: SwitchUnderTest, line_start: str) -> str:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{sut.running.metrics_port}/metrics")).text
    return "\n".join(x for x in text.splitlines() if x.startswith(line_start))


async def test_a_code_registers_once_then_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with started_switch(tmp_path, metrics_port=_unused_port()) as sut:
        code = await _pending(sut, "T0000002")
        assert len(code) == 16
        await sut.restart()  # the switch reads the pending registration at start
        async with sut.terminal("T0000002") as terminal:
            # pending: every request but the registration is refused 109
            assert (await terminal.exchange(terminal.purchase(1000))).fields["39"] == "109"
            # no MAC: the terminal may hold no working key yet
            await terminal.send(registration(terminal, "SN-0001", code), mac=False)
            answer = await terminal.receive()
            assert (answer.mti, answer.fields["39"]) == ("1814", "800")
            assert answer.fields["41"] == "T0000002"
            assert decode_field48(answer.fields["48"])[16] == "SN-0001"
            assert "64" not in answer.fields and "128" not in answer.fields
            assert (await terminal.exchange(terminal.purchase(1000))).fields["39"] == "000"
            await terminal.send(registration(terminal, "SN-9999", code), mac=False)
            assert (await terminal.receive()).fields["39"] == "100"  # used: refused
        assert 'result="used"' in await _metric(sut, "forecourt_terminal_registrations_total")
    row = await _row(tmp_path, "T0000002")
    assert (row["state"], row["serial"]) == ("registered", "SN-0001")
    assert code not in str(row)  # only its argon2 hash is kept
    logged = capsys.readouterr()
    for secret in (code, code.encode().hex().upper()):  # nor in any log line
        assert secret not in logged.out + logged.err


async def test_an_expired_code_is_refused(tmp_path: Path) -> None:
    async with started_switch(tmp_path, metrics_port=_unused_port()) as sut:
        code = await _pending(sut, "T0000002", expires_in_s=0.2)
        await trio.sleep(0.3)
        async with sut.terminal("T0000002") as terminal:
            await terminal.send(registration(terminal, "SN-0001", code), mac=False)
            assert (await terminal.receive()).fields["39"] == "100"
        assert 'result="expired"' in await _metric(sut, "forecourt_terminal_registrations_total")
    assert (await _row(tmp_path, "T0000002"))["state"] == "pending"


async def test_wrong_serials_and_codes_are_counted_then_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started_switch(tmp_path, metrics_port=_unused_port()) as sut:
        code = await _pending(sut, "T0000002", expected_serial="SN-0042", max_attempts=2)
        async with sut.terminal("T0000002") as terminal:
            await terminal.send(registration(terminal, "SN-0666", code), mac=False)
            assert (await terminal.receive()).fields["39"] == "100"  # the wrong serial
            # at once again: refused unread (no argon2 work for a guesser), not counted
            await terminal.send(registration(terminal, "SN-0042", "0" * 16), mac=False)
            assert (await terminal.receive()).fields["39"] == "100"
            assert (await _row(tmp_path, "T0000002"))["failures"] == 1
            monkeypatch.setattr(registration_flow, "RETRY_S", 0.0)
            await terminal.send(registration(terminal, "SN-0042", "0" * 16), mac=False)
            assert (await terminal.receive()).fields["39"] == "100"  # the wrong code
            # locked after max_attempts: even the right code and serial are refused
            await terminal.send(registration(terminal, "SN-0042", code), mac=False)
            assert (await terminal.receive()).fields["39"] == "100"
        counted = await _metric(sut, "forecourt_terminal_registrations_total")
        for result in ("wrong_serial", "too_soon", "wrong_code", "locked"):
            assert f'result="{result}"' in counted
    row = await _row(tmp_path, "T0000002")
    assert (row["state"], row["failures"], row["serial"]) == ("locked", 2, None)


async def test_a_registration_without_its_fields_is_a_format_error(tmp_path: Path) -> None:
    async with started_switch(tmp_path) as sut, sut.terminal("T0000002") as terminal:
        request = registration(terminal, "SN-1", "0" * 16)
        await terminal.send(
            request.with_fields({48: "0000000000000000"}), mac=False
        )  # a bitmap with no sub-element
        assert (await terminal.receive()).fields["39"] == "904"
