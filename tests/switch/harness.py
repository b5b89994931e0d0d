"""A switch started in-process on real sockets, a small acquirer host, and a terminal.

The host lives in the tests (it really listens on 127.0.0.1) so the switch core is
tested without the simulators. Its behaviour is chosen by amount:
  100000 -> decline 100 / 05;   200000 -> delay 2 s;   300000 -> never answer;
  400000 -> partial approval of half the amount (002 / 10);   else approve.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.codecs.dialect import Dialect, decode, encode, encode_with_mac, get_dialect
from forecourt.codecs.fields import OriginalData, OriginalElements
from forecourt.codecs.framing import FrameDecoder, Framing, encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti
from forecourt.keys.exchange import install_key_change
from forecourt.keys.keyring import MacKey
from forecourt.keys.lmk import Lmk
from forecourt.keys.store import KeyStore
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.server import RunningSwitch, run_switch

TEST_PAN = "4761739001010010"
_STANS = itertools.count(1)


@attrs.define
class SmallHost:
    dialect: Dialect
    port: int = 0
    received: list[Message] = attrs.field(factory=list)
    connections: int = 0
    # answers to the next reversals/advices, one each ("909" keeps them queued); then 400/000
    advice_codes: list[str] = attrs.field(factory=list)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self._connection, listeners, handler_nursery=nursery)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        decoder = FrameDecoder(Framing())
        lock = trio.Lock()
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return
                if not data:
                    return
                for frame in decoder.feed(data):
                    nursery.start_soon(self._answer, stream, lock, frame.payload)

    async def _answer(self, stream: trio.SocketStream, lock: trio.Lock, payload: bytes) -> None:
        request = decode(self.dialect, payload)
        self.received.append(request)
        fam93 = self.dialect.family == "1993"
        fields = {k: v for k, v in request.fields.items() if k not in ("2", "35", "52", "64")}
        amount = request.fields.get("4", "0")
        code = "000" if fam93 else "00"
        if request.mti[1] == "8":
            code = "800" if fam93 else "00"
        elif self.advice_codes and (request.mti[1] == "4" or request.mti[2] == "2"):
            code = self.advice_codes.pop(0)
        elif request.mti[1] == "4":
            code = "400" if fam93 else "00"
        elif request.mti[2] == "2":
            code = "000" if fam93 else "00"
        elif amount == "000000100000":
            code = "100" if fam93 else "05"
        elif amount == "000000200000":
            await trio.sleep(2)
        elif amount == "000000300000":
            return
        elif amount == "000000400000":
            code = "002" if fam93 else "10"
            fields["4"] = f"{int(amount) // 2:012d}"
        fields["39"] = code
        if code in ("000", "00", "002", "10"):
            fields["38"] = "A1B2C3"
        answer = Message(mti=response_mti(request.mti), fields=fields)
        async with lock:
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.send_all(encode_frame(Framing(), encode(self.dialect, answer)))


@attrs.define
class Terminal:
    """A terminal on a real socket: MACs its requests, reads answers by STAN."""

    stream: trio.SocketStream
    dialect: Dialect
    terminal_id: str
    tak: MacKey | None
    framing: Framing = attrs.field(factory=Framing)
    _decoder: FrameDecoder = attrs.field(init=False)
    _pending: list[bytes] = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        self._decoder = FrameDecoder(self.framing)

    def next_stan(self) -> str:
        # one sequence for the whole test run, as a terminal keeps its STAN across connections
        return f"{next(_STANS) % 999_999 + 1:06d}"

    def purchase(self, amount: int, stan: str | None = None, pan: str = TEST_PAN) -> Message:
        family93 = self.dialect.family == "1993"
        fields = {
            "2": pan,
            "3": "000000",
            "4": f"{amount:012d}",
            "7": "1122093015",
            "11": stan or self.next_stan(),
            "41": self.terminal_id,
            "42": "FORECOURT000001",
            "49": "978",
        }
        if family93:
            fields["12"] = "261122093015"
        else:
            fields["12"] = "093015"
            fields["13"] = "1122"
        return Message(mti="1200" if family93 else "0200", fields=fields)

    def preauth(self, amount: int) -> Message:
        purchase = self.purchase(amount)
        return purchase.with_fields({}, mti="1100" if self.dialect.family == "1993" else "0100")

    def referring(self, mti: str, original: Message, amount: int | None = None) -> Message:
        """A completion or reversal that names `original` (field 56 / 90)."""
        fields = {k: v for k, v in original.fields.items() if k not in ("64", "128")}
        fields["11"] = self.next_stan()
        if amount is not None:
            fields["4"] = f"{amount:012d}"
        if self.dialect.family == "1993":
            fields["56"] = OriginalData.of(original.mti, original.fields).encode()
        else:
            fields["90"] = OriginalElements.of(original.mti, original.fields).encode()
        return Message(mti=mti, fields=fields)

    def completion(self, preauth: Message, amount: int) -> Message:
        mti = "1220" if self.dialect.family == "1993" else "0220"
        completion = self.referring(mti, preauth, amount)
        if self.dialect.family == "1993":
            maximum = int(preauth.fields["4"])
            extra = {24: "201" if amount == maximum else "202", 30: f"{maximum:012d}{0:012d}"}
            completion = completion.with_fields(extra)
        return completion

    def reversal(self, original: Message, final_amount: int | None = None) -> Message:
        mti = "1420" if self.dialect.family == "1993" else "0400"
        reversal = self.referring(mti, original)
        if final_amount is not None:
            first = int(original.fields["4"])
            reversal = reversal.with_fields(
                {4: f"{final_amount:012d}", 30: f"{first:012d}{0:012d}"}
            )
        return reversal

    def shift_close(self, debits: tuple[int, int], credits: tuple[int, int] = (0, 0)) -> Message:
        fields = {
            "11": self.next_stan(),
            "41": self.terminal_id,
            "42": "FORECOURT000001",
            "7": "1122093015",
            "74": f"{credits[0]:010d}",
            "86": f"{credits[1]:016d}",
            "76": f"{debits[0]:010d}",
            "88": f"{debits[1]:016d}",
        }
        return Message(mti="1520" if self.dialect.family == "1993" else "0500", fields=fields)

    async def send(self, message: Message, *, mac: bool = True) -> None:
        if mac and self.tak is not None:
            payload = encode_with_mac(self.dialect, message, self.tak.generate)
        else:
            payload = encode(self.dialect, message)
        await self.stream.send_all(encode_frame(self.framing, payload))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive(self, timeout: float = 5.0) -> Message:
        with trio.fail_after(timeout):
            while not self._pending:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError("switch closed the connection")
                self._pending.extend(f.payload for f in self._decoder.feed(data))
        return decode(self.dialect, self._pending.pop(0))

    async def closed(self, timeout: float = 5.0) -> bool:
        """True when the switch closes the connection within `timeout`."""
        with trio.move_on_after(timeout):
            try:
                while await self.stream.receive_some(65536):
                    pass
            except trio.BrokenResourceError:
                pass
            return True
        return False

    async def exchange(self, message: Message, timeout: float = 5.0) -> Message:
        await self.send(message)
        return await self.receive(timeout)


@attrs.define
class SwitchUnderTest:
    config: SwitchConfig
    running: RunningSwitch
    host: SmallHost
    store: KeyStore
    terminal_keys: dict[str, MacKey]
    keks: dict[str, bytes]
    stop: trio.Event

    @property
    def port(self) -> int:
        return next(iter(self.running.ports.values()))

    @contextlib.asynccontextmanager
    async def terminal(self, terminal_id: str = "T0000001") -> AsyncIterator[Terminal]:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        try:
            dialect = get_dialect(self.config.listeners[0].dialect)
            yield Terminal(stream, dialect, terminal_id, self.terminal_keys.get(terminal_id))
        finally:
            await stream.aclose()


def switch_config(
    data_dir: Path, host_port: int, *, dialect: str = "ifsf", mac: bool = True, **over: Any
) -> SwitchConfig:
    doc: dict[str, Any] = {
        "node": "test-node",
        "data_dir": str(data_dir),
        "default_route": "bank",
        "metrics": {"host": "127.0.0.1", "port": over.pop("metrics_port", 0)},
        "logging": {"level": "warning", "format": "json"},
        "listeners": [
            {
                "name": "pos",
                "host": "127.0.0.1",
                "port": 0,
                "dialect": dialect,
                "terminal_group": "site",
                "max_connections": over.pop("max_connections", 50),
                "idle_timeout_s": over.pop("idle_timeout_s", 30.0),
                "max_frame": over.pop("max_frame", 8192),
                **({"tls": over.pop("tls")} if "tls" in over else {}),
            }
        ],
        "terminal_groups": [
            {
                "name": "site",
                "terminals": "registry",
                "mac_required": mac,
                "max_in_flight": over.pop("max_in_flight", 4),
                "mac_failures_before_lock": over.pop("mac_failures_before_lock", 3),
            }
        ],
        "acquirers": [
            {
                "name": "bank",
                "host": "127.0.0.1",
                "port": host_port,
                "dialect": over.pop("host_dialect", dialect),
                "mac": False,
                "connections": 2,
                "max_in_flight": over.pop("link_max_in_flight", 100),
                "request_timeout_s": over.pop("request_timeout_s", 1.0),
                "echo_interval_s": 0.0,
                "sign_on": over.pop("sign_on", True),
                "reconnect_initial_s": 0.05,
                "reconnect_max_s": 0.5,
                "acquirer_id": "12345678901",
            }
        ],
    }
    if "preauth_window_s" in over:
        doc["reversal"] = {"preauth_completion_window_s": over.pop("preauth_window_s")}
    doc["saf"] = {"backoff_initial_s": over.pop("saf_backoff_s", 0.2), "backoff_max_s": 1.0}
    assert not over, f"unknown overrides {over}"
    return parse_config(doc, source="test")


@contextlib.asynccontextmanager
async def started_switch(
    data_dir: Path,
    *,
    terminals: tuple[str, ...] = ("T0000001", "T0000002"),
    link_up: bool = True,
    **config_over: Any,
) -> AsyncIterator[SwitchUnderTest]:
    lmk = Lmk.generate()
    store = KeyStore.init(data_dir, lmk=lmk)
    terminal_keys: dict[str, MacKey] = {}
    keks: dict[str, bytes] = {}
    for tid in terminals:
        ceremony = store.add_terminal(tid)
        keks[tid] = ceremony.clear_kek
        terminal_keys[tid] = install_key_change(ceremony.clear_kek, ceremony.payload).mac_key()
    dialect = config_over.get("host_dialect", config_over.get("dialect", "ifsf"))
    host = SmallHost(get_dialect(dialect))
    stop = trio.Event()
    async with trio.open_nursery() as outer:
        host_port = await outer.start(host.serve)
        if not link_up:
            host_port = _unused_port()
        config = switch_config(data_dir, host_port, **config_over)
        async with trio.open_nursery() as switch_nursery:
            running = await switch_nursery.start(
                functools.partial(run_switch, config, stop=stop, lmk=lmk)
            )
            sut = SwitchUnderTest(config, running, host, store, terminal_keys, keks, stop)
            with trio.fail_after(5):
                while link_up and host.connections < 2:
                    await trio.sleep(0.01)
            try:
                yield sut
            finally:
                stop.set()
        outer.cancel_scope.cancel()
    store.close()


def _unused_port() -> int:
    """A port nothing listens on (bound then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
