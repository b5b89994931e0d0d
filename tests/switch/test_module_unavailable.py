"""A switch whose security module cannot be reached answers its terminals in time.

The key store was made on `forecourt sim hsm` (its rows hold the HSM's blocks),
which then stopped: the payshield backend points at its closed port (the real
backend and its connection pool, no double). A purchase is answered 909 (system
malfunction, unMAC'd: the module cannot MAC either) within the module's deadline
and never forwarded; a PIN purchase on a group without MACs is refused the same
way at field 52; the switch keeps serving (an echo), counts each refusal, and says why in /healthz.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import trio
from forecourt.codecs.network import NetworkFunction
from forecourt.keys.pin import encrypt_pin_block

from tests.keys.hsm_thread import hsm_in_thread
from tests.switch.harness import TEST_PAN, _unused_port, started_switch
from tests.switch.payshield_store import PreparedKeys, payshield_keys

TIMEOUT_S = 0.5  # [keys.payshield] timeout_s: each command's deadline
UNAVAILABLE = 'forecourt_rejections_total{reason="security_module_unavailable"}'
MODULE_UNAVAILABLE = (
    'forecourt_security_module_errors_total{backend="payshield",code="unavailable"}'
)


def _store_on_stopped_hsm(
    data_dir: Path, zmk_components: tuple[bytes, bytes] | None = None
) -> tuple[int, PreparedKeys]:
    """A payshield store made on `forecourt sim hsm`, and the port the simulator
    listened on, now that it has stopped."""
    with hsm_in_thread(data_dir / "hsm") as hsm:
        prepared = payshield_keys(data_dir, hsm, ("T0000001", "T0000002"), zmk_components)
        return hsm.port, prepared


def _keys(port: int) -> dict[str, object]:
    return {
        "backend": "payshield",
        "payshield": {"host": "127.0.0.1", "port": port, "timeout_s": TIMEOUT_S},
    }


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.slow
async def test_terminals_hear_909_in_time_and_the_switch_keeps_serving(tmp_path: Path) -> None:
    hsm_port, prepared = _store_on_stopped_hsm(tmp_path)
    metrics_port = _unused_port()
    async with (
        started_switch(
            tmp_path, prepared=prepared, metrics_port=metrics_port, keys=_keys(hsm_port)
        ) as sut,
        sut.terminal() as t,
    ):
        for amount in (2500, 2600):
            started = trio.current_time()
            answer = await t.exchange(t.purchase(amount))
            assert answer.fields["39"] == "909"
            assert trio.current_time() - started < TIMEOUT_S + 0.5
            assert "64" not in answer.fields and "128" not in answer.fields
        echo = await t.exchange(t.network(NetworkFunction.ECHO))
        assert echo.fields["39"] == "800"  # no key in it: served as ever
        assert [m for m in sut.host.received if m.mti == "1200"] == []  # nothing forwarded
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as http:
            text = (await http.get("/metrics")).text
            health = await http.get("/healthz")
        assert _metric(text, UNAVAILABLE) == 2.0
        assert _metric(text, 'forecourt_security_module_up{backend="payshield"}') == 0.0
        assert _metric(text, MODULE_UNAVAILABLE) >= 2.0
        assert health.status_code == 503
        assert any("security module payshield" in r for r in health.json()["reasons"])


@pytest.mark.slow
async def test_a_pin_block_is_refused_not_forwarded_when_the_module_is_down(
    tmp_path: Path,
) -> None:
    """A group without MACs: the first key operation is field 52's translation."""
    hsm_port, prepared = _store_on_stopped_hsm(tmp_path, (os.urandom(16), os.urandom(16)))
    metrics_port = _unused_port()
    async with (
        started_switch(
            tmp_path,
            mac=False,
            prepared=prepared,
            metrics_port=metrics_port,
            keys=_keys(hsm_port),
        ) as sut,
        sut.terminal() as t,
    ):
        tpk = sut.tpks[t.terminal_id]
        block = encrypt_pin_block(tpk.key, tpk.algorithm, "4821", TEST_PAN)
        started = trio.current_time()
        answer = await t.exchange(t.purchase(2500).with_fields({52: block.hex().upper()}))
        assert answer.fields["39"] == "909"
        assert trio.current_time() - started < TIMEOUT_S + 0.5
        assert [m for m in sut.host.received if m.mti == "1200"] == []
        plain = await t.exchange(t.purchase(2600))  # no PIN, no key operation: served
        assert plain.fields["39"] == "000"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}") as http:
            text = (await http.get("/metrics")).text
        assert _metric(text, UNAVAILABLE) == 1.0
