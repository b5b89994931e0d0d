"""No request can end the process: hostile but decodable messages for every flow.

One switch runs for the whole module in its own thread (its own trio loop); each
hypothesis example opens a connection, sends a message built for some flow with
fields missing or odd, function codes unknown, terminals unknown, unregistered
(listed in the group, absent from the key store) or real, and expects an answer or a
closed connection. Then another terminal must still get a purchase approved.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from forecourt.codecs.dialect import decode, encode, get_dialect
from forecourt.codecs.errors import CodecError
from forecourt.codecs.framing import FrameDecoder, Framing, encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.network import transmission_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.switch.harness import TEST_PAN, Terminal, started_switch

LISTED = ["T0000001", "T0000002", "T0000099"]  # T0000099 is in no key store

MTIS = {
    "ifsf": [
        "1100",
        "1120",
        "1200",
        "1220",
        "1221",
        "1304",
        "1420",
        "1421",
        "1520",
        "1521",
        "1604",
        "1804",
        "1820",
        "1900",
    ],
    "iso87ascii": [
        "0100",
        "0120",
        "0200",
        "0220",
        "0221",
        "0300",
        "0400",
        "0401",
        "0500",
        "0600",
        "0800",
        "0820",
    ],
}
digits = st.text(alphabet="0123456789", min_size=1, max_size=12)


def _field_values(dialect: str) -> dict[str, st.SearchStrategy[str]]:
    f93 = dialect == "ifsf"
    return {
        "2": st.sampled_from([TEST_PAN, "5", "7077000000000000001"]),
        "3": st.sampled_from(["000000", "310000", "300000", "200000", "990000"]),
        "4": st.sampled_from(["000000000000", "000000001000", "000000300000", "999999999999"]),
        # now (checked against the switch's clock, so the flows run) or long ago (refused)
        "7": st.one_of(st.builds(transmission_time), st.just("1201093015")),
        "12": st.just("261201093015" if f93 else "093015"),
        "24": st.sampled_from(["801", "802", "811", "831", "200", "201", "999", "100"]),
        "25": st.sampled_from(["4021", "0000", "9999"]),
        "30": st.just("0" * 24),
        "32": digits.map(lambda d: d[:11]),
        "42": st.just("FORECOURT000001"),
        "49": st.sampled_from(["978", "840"]),
        "56": st.sampled_from(["12000000011261201093015", "1", "1200999999"]),
        "70": st.sampled_from(["001", "002", "101", "301", "999"]),
        "90": st.just("0200000001120109301500000000000000000000000"),
    }


@st.composite
def hostile(draw: st.DrawFn, dialect: str) -> Message:
    network = draw(st.integers(0, 2)) == 0  # a third network management: keys, shifts, locks
    if network:
        mti = "1804" if dialect == "ifsf" else "0800"
    else:
        mti = draw(st.sampled_from(MTIS[dialect]))
    pool = _field_values(dialect)
    fields = {k: draw(v) for k, v in pool.items() if draw(st.booleans())}
    if network:
        fields["24" if dialect == "ifsf" else "70"] = draw(
            pool["24" if dialect == "ifsf" else "70"]
        )
    if draw(st.integers(0, 9)):
        fields["11"] = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    terminal = draw(st.sampled_from([None, "T0000001", "T0000099", "T9999999", "        "]))
    if terminal is not None:
        fields["41"] = terminal
    if dialect != "ifsf":
        fields.pop("24", None)
        fields.pop("56", None)
    else:
        fields.pop("70", None)
        fields.pop("90", None)
    return Message(mti=mti, fields=fields)


class RunningSwitch:
    def __init__(self, data_dir: Path, dialect: str) -> None:
        self._ready = threading.Event()
        self._data_dir = data_dir
        self.dialect = dialect
        self.port = 0
        self.error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the switch did not start")

    def _main(self) -> None:
        try:
            trio.run(self._run)
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    async def _run(self) -> None:
        async with started_switch(
            self._data_dir,
            dialect=self.dialect,
            mac=False,
            group_terminals=LISTED,
            request_timeout_s=0.5,
        ) as sut:
            self.port = sut.port
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            self._ready.set()
            await self._stop.wait()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def close(self) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)


@pytest.fixture(scope="module", params=["ifsf", "iso87ascii"])
def switch(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    running = RunningSwitch(tmp_path_factory.mktemp("hostile"), request.param)
    yield running
    running.close()
    assert running.error is None


async def _one(port: int, dialect: str, message: Message) -> str:
    """'answered' or 'closed'; fails the example if neither happens in time."""
    framing = Framing()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(encode_frame(framing, encode(get_dialect(dialect), message)))
        decoder = FrameDecoder(framing)
        with trio.fail_after(5):
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return "closed"
                if not data:
                    return "closed"
                for frame in decoder.feed(data):
                    decode(get_dialect(dialect), frame.payload)  # an answer is well formed
                    return "answered"
    finally:
        await stream.aclose()


async def _purchase_approved(port: int, dialect: str) -> str:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        t = Terminal(stream, get_dialect(dialect), "T0000002", None)
        answer = await t.exchange(t.purchase(1000))
        return answer.fields["39"]
    finally:
        await stream.aclose()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_messages_never_end_the_switch(switch: RunningSwitch, data: st.DataObject) -> None:
    message = data.draw(hostile(switch.dialect))
    try:
        encode(get_dialect(switch.dialect), message)
    except CodecError:
        return  # not decodable by construction: the codec tests cover bytes
    outcome = trio.run(_one, switch.port, switch.dialect, message)
    assert outcome in ("answered", "closed")
    assert switch.alive
    assert trio.run(_purchase_approved, switch.port, switch.dialect) in ("000", "00")
