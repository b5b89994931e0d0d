"""A switch started in-process on real sockets, a small acquirer host, and a terminal.

The host lives in the tests (it really listens on 127.0.0.1) so the switch core is
tested without the simulators. Its behaviour is chosen by amount:
  100000 -> decline 100 / 05;   200000 -> delay 2 s;   300000 -> never answer;
  400000 -> partial approval of half the amount (002 / 10);   else approve.

`RecordingHost` is the host of the invariant tests: a test-chosen plan per request,
and a ledger of what it approved and what reversals took back.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import trio
from forecourt.codecs.amounts import AVAILABLE_BALANCE, AdditionalAmount, encode_field54
from forecourt.codecs.dialect import Dialect, decode, encode, encode_with_mac, get_dialect
from forecourt.codecs.fields import OriginalData, OriginalElements
from forecourt.codecs.framing import FrameDecoder, Framing, encode_frame
from forecourt.codecs.message import Message
from forecourt.codecs.mti import response_mti
from forecourt.codecs.network import NetworkFunction, network_function, network_request
from forecourt.keys.crypto import adjust_parity
from forecourt.keys.exchange import ClearKey, install_key_change
from forecourt.keys.keyring import MacKey
from forecourt.keys.lmk import Lmk
from forecourt.keys.model import KeyType
from forecourt.keys.sign_on import sign_on_mac
from forecourt.keys.store import KeyStore
from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.server import RunningSwitch, run_switch

from tests.switch.payshield_store import PreparedKeys

TEST_PAN = "4761739001010010"
BALANCE = 123_456  # what the small host answers a balance inquiry with
_STANS = itertools.count(1)


@attrs.define
class SmallHost:
    dialect: Dialect
    port: int = 0
    received: list[Message] = attrs.field(factory=list)
    connections: int = 0
    # answers to the next reversals/advices, one each ("909" keeps them queued); then 400/000
    advice_codes: list[str] = attrs.field(factory=list)
    # write a secondary bitmap that flags no field, as some ISO 8583 stacks always do
    empty_secondary: bool = False

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
        if request.mti[1] == "1" and request.fields.get("3", "")[:2] in ("30", "31"):
            # a balance inquiry: nothing taken, the balance in field 54
            fields.pop("4", None)
            fields["54"] = encode_field54(
                [AdditionalAmount("00", AVAILABLE_BALANCE, "978", BALANCE)]
            )
        fields["39"] = code
        if code in ("000", "00", "002", "10"):
            fields["38"] = "A1B2C3"
        answer = Message(mti=response_mti(request.mti), fields=fields)
        payload = encode(self.dialect, answer)
        if self.empty_secondary and self.dialect.bitmap == "binary" and not payload[4] & 0x80:
            payload = (
                payload[:4] + bytes([payload[4] | 0x80]) + payload[5:12] + bytes(8) + payload[12:]
            )
        async with lock:
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.send_all(encode_frame(Framing(), payload))


# An original as the host knows it: terminal id (41), the switch's STAN on the link
# (11) and the original date-time (12) -- what a reversal names in field 41 and 56.
HostKey = tuple[str, str, str]


@attrs.frozen
class HostPlan:
    """What `RecordingHost` does with one authorisation or purchase."""

    code: str = "000"  # 000 approves, 002 approves half the amount, anything else declines
    delay_s: float = 0.0
    answer: bool = True  # False: booked all the same, but no answer ever leaves


@attrs.define
class Booking:
    """An original as the host booked it (approved 0 when it declined)."""

    request: Message
    code: str
    approved: int
    reversed: int = 0
    reversals: int = 0  # reversals that named it; only the first takes anything back


def approve_at_once(request: Message) -> HostPlan:
    return HostPlan()


@attrs.define
class RecordingHost(SmallHost):
    """An IFSF host that keeps a ledger of what it approved and what was reversed.

    An authorisation or purchase is booked when it arrives, whatever becomes of its
    answer (delayed, never sent, sent on a connection that is gone): approved at the
    host is what charges the card. A reversal (1420/1421) names its original by field
    41 and field 56 and takes back the booked amount once; one naming nothing booked
    is kept in `orphans`. Reversals are acknowledged 400, network management 800.
    """

    dialect: Dialect = attrs.field(factory=lambda: get_dialect("ifsf"))
    plan: Callable[[Message], HostPlan] = approve_at_once
    bookings: list[Booking] = attrs.field(factory=list)
    orphans: list[Message] = attrs.field(factory=list)
    _by_key: dict[HostKey, Booking] = attrs.field(factory=dict)

    @staticmethod
    def key(message: Message) -> HostKey:
        return (message.fields["41"], message.fields["11"], message.fields.get("12", ""))

    async def _answer(self, stream: trio.SocketStream, lock: trio.Lock, payload: bytes) -> None:
        request = decode(self.dialect, payload)
        self.received.append(request)
        fields = {k: v for k, v in request.fields.items() if k not in ("2", "35", "52", "64")}
        plan = HostPlan()
        if request.mti[1] == "8":
            fields["39"] = "800"
        elif request.mti[1] == "4":
            self._reverse(request)
            fields["39"] = "400"
        elif request.mti[2] == "2":
            fields["39"] = "000"
        else:
            plan = self.plan(request)
            amount = int(request.fields.get("4", "0"))
            approved = {"000": amount, "002": amount // 2}.get(plan.code, 0)
            booking = Booking(request, plan.code, approved)
            self.bookings.append(booking)
            self._by_key[self.key(request)] = booking
            fields["39"] = plan.code
            if approved:
                fields["4"] = f"{approved:012d}"
                fields["38"] = "A1B2C3"
        if not plan.answer:
            return
        await trio.sleep(plan.delay_s)
        answer = encode_frame(
            Framing(), encode(self.dialect, Message(response_mti(request.mti), fields))
        )
        async with lock:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(answer)

    def _reverse(self, reversal: Message) -> None:
        original = OriginalData.decode(reversal.fields["56"])
        key = (reversal.fields["41"], original.stan, original.local_datetime)
        booking = self._by_key.get(key)
        if booking is None:
            self.orphans.append(reversal)
            return
        booking.reversals += 1
        if booking.reversals == 1:
            booking.reversed = booking.approved


def proven(dialect: Dialect, message: Message, *, kek: bytes | None, tak: MacKey | None) -> bytes:
    """`message` encoded as a terminal proves it: a sign-on MAC'd under the sign-on key
    derived from `kek`, anything else (a key change, a sign-off, a purchase) under `tak`;
    an echo without a MAC. Without the key it would need, no MAC at all."""
    function = network_function(message) if message.mti[1] == "8" else None
    mac: Callable[[bytes], bytes] | None = None
    if function is NetworkFunction.SIGN_ON:
        if kek is not None:
            mac = sign_on_mac(kek, message.fields.get("41", "")).generate
    elif function is not NetworkFunction.ECHO and tak is not None:
        mac = tak.generate
    return encode(dialect, message) if mac is None else encode_with_mac(dialect, message, mac)


@attrs.define
class Terminal:
    """A terminal on a real socket: MACs its requests, reads answers by STAN.

    `sign_on` / `key_change` send the proven request, and install the TAK the answer
    delivers (under `kek`)."""

    stream: trio.SocketStream
    dialect: Dialect
    terminal_id: str
    tak: MacKey | None
    framing: Framing = attrs.field(factory=Framing)
    kek: bytes | None = None
    _decoder: FrameDecoder = attrs.field(init=False)
    _pending: list[bytes] = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        self._decoder = FrameDecoder(self.framing)

    def next_stan(self) -> str:
        # one sequence for the whole test run, as a terminal keeps its STAN across connections
        return f"{next(_STANS) % 999_999 + 1:06d}"

    def purchase(self, amount: int, stan: str | None = None, pan: str = TEST_PAN) -> Message:
        family93 = self.dialect.family == "1993"
        now = time.gmtime()  # field 7 is checked against the switch's clock
        fields = {
            "2": pan,
            "3": "000000",
            "4": f"{amount:012d}",
            "7": time.strftime("%m%d%H%M%S", now),
            "11": stan or self.next_stan(),
            "41": self.terminal_id,
            "42": "FORECOURT000001",
            "49": "978",
        }
        if family93:
            fields["12"] = time.strftime("%y%m%d%H%M%S", now)
        else:
            fields["12"] = time.strftime("%H%M%S", now)
            fields["13"] = time.strftime("%m%d", now)
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
            "7": time.strftime("%m%d%H%M%S", time.gmtime()),
            "74": f"{credits[0]:010d}",
            "86": f"{credits[1]:016d}",
            "76": f"{debits[0]:010d}",
            "88": f"{debits[1]:016d}",
        }
        return Message(mti="1520" if self.dialect.family == "1993" else "0500", fields=fields)

    def network(self, function: NetworkFunction) -> Message:
        return network_request(self.dialect.family, function, self.next_stan(), self.terminal_id)

    async def sign_on(self) -> Message:
        """A proven sign-on; the delivered TAK installed when the answer has keys."""
        return await self._keys_exchange(NetworkFunction.SIGN_ON)

    async def key_change(self) -> Message:
        """A key change MAC'd under the current TAK; the delivered TAK installed."""
        return await self._keys_exchange(NetworkFunction.KEY_CHANGE)

    async def _keys_exchange(self, function: NetworkFunction) -> Message:
        answer = await self.exchange(self.network(function))
        self.install(answer)
        return answer

    def install(self, answer: Message) -> None:
        field = answer.fields.get("96") if self.dialect.family == "1993" else None
        payload: str | bytes | None = bytes.fromhex(field) if field else answer.fields.get("48")
        if payload and self.kek is not None:
            self.tak = install_key_change(self.kek, payload).mac_key()

    async def send(self, message: Message, *, mac: bool = True) -> None:
        if mac:
            payload = proven(self.dialect, message, kek=self.kek, tak=self.tak)
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
    # set by started_switch so that `restart` can run the switch again
    _nursery: trio.Nursery | None = None
    _lmk: Lmk | None = None
    _stopped: trio.Event = attrs.field(factory=trio.Event)
    # each terminal's first TPK, and the link's ZPK when the test gave it one
    tpks: dict[str, ClearKey] = attrs.field(factory=dict)
    zpk: ClearKey | None = None

    @property
    def port(self) -> int:
        return next(iter(self.running.ports.values()))

    async def start(self) -> None:
        """Run the switch (again) on its data dir; return once its links are up."""
        assert self._nursery is not None
        self.stop, self._stopped = trio.Event(), trio.Event()
        before = self.host.connections
        self.running = await self._nursery.start(
            _run_switch, self.config, self.stop, self._stopped, self._lmk
        )
        with trio.fail_after(5):
            while self.host.connections < before + self.config.acquirers[0].connections:
                await trio.sleep(0.01)

    async def restart(self) -> None:
        """Stop the switch as SIGTERM does (drain, flush the journal) and start it again.

        Terminals connect again afterwards: the listening port changes.
        """
        self.stop.set()
        await self._stopped.wait()
        await self.start()
        await trio.sleep(0.05)  # the links' sign-on answers

    @contextlib.asynccontextmanager
    async def terminal(self, terminal_id: str = "T0000001") -> AsyncIterator[Terminal]:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        try:
            dialect = get_dialect(self.config.listeners[0].dialect)
            yield Terminal(
                stream,
                dialect,
                terminal_id,
                self.terminal_keys.get(terminal_id),
                kek=self.keks.get(terminal_id),
            )
        finally:
            await stream.aclose()


# listener keys a test may set; otherwise the defaults apply
_LISTENER_LIMITS = (
    "max_connections_per_address",
    "first_frame_timeout_s",
    "max_in_flight_per_connection",
)


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
                **{key: over.pop(key) for key in _LISTENER_LIMITS if key in over},
                **({"tls": over.pop("tls")} if "tls" in over else {}),
            }
        ],
        "terminal_groups": [
            {
                "name": "site",
                "terminals": over.pop("group_terminals", "registry"),
                "mac_required": mac,
                "max_in_flight": over.pop("max_in_flight", 4),
                "mac_failures_before_lock": over.pop("mac_failures_before_lock", 3),
                "transmission_time_tolerance_s": over.pop("tolerance_s", 600.0),
                "require_operator": over.pop("require_operator", False),
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
                "acquirer_id": over.pop("acquirer_id", "12345678901"),
            }
        ],
    }
    for section in ("stand_in", "routes", "params", "business_day"):
        if section in over:
            doc[section] = over.pop(section)
    if "duplicate_window" in over:
        doc["journal"] = {"duplicate_window": over.pop("duplicate_window")}
    if "preauth_window_s" in over:
        doc["reversal"] = {"preauth_completion_window_s": over.pop("preauth_window_s")}
    if "rotations_per_minute" in over:
        doc["keys"] = {"rotations_per_minute": over.pop("rotations_per_minute")}
    if "keys" in over:  # e.g. a security-module backend
        doc.setdefault("keys", {}).update(over.pop("keys"))
    doc["saf"] = {"backoff_initial_s": over.pop("saf_backoff_s", 0.2), "backoff_max_s": 1.0}
    assert not over, f"unknown overrides {over}"
    return parse_config(doc, source="test")


@contextlib.asynccontextmanager
async def started_switch(
    data_dir: Path,
    *,
    terminals: tuple[str, ...] = ("T0000001", "T0000002"),
    link_up: bool = True,
    host: SmallHost | None = None,
    zmk_components: tuple[bytes, bytes] | None = None,
    prepared: PreparedKeys | None = None,
    **config_over: Any,
) -> AsyncIterator[SwitchUnderTest]:
    """`zmk_components`: register the link "bank" in the key store (ZAK/ZPK under
    that ZMK), so PIN blocks are translated to its ZPK. `prepared`: a store made
    already, with what its terminals and host hold (tests/switch/payshield_store.py)."""
    lmk = Lmk.generate() if prepared is None else prepared.lmk
    store = KeyStore.init(data_dir, lmk=lmk) if prepared is None else prepared.store
    terminal_keys: dict[str, MacKey] = {} if prepared is None else prepared.terminal_keys
    keks: dict[str, bytes] = {} if prepared is None else prepared.keks
    tpks: dict[str, ClearKey] = {} if prepared is None else prepared.tpks
    for tid in terminals if prepared is None else ():
        ceremony = store.add_terminal(tid)
        keks[tid] = ceremony.clear_kek
        installed = install_key_change(ceremony.clear_kek, ceremony.payload)
        terminal_keys[tid] = installed.mac_key()
        tpks[tid] = installed.get(KeyType.TPK)
    zpk: ClearKey | None = None if prepared is None else prepared.zpk
    if zmk_components is not None and prepared is None:
        info = store.add_acquirer("bank", zmk_components)
        zmk = adjust_parity(bytes(a ^ b for a, b in zip(*zmk_components, strict=True)))
        zpk = install_key_change(zmk, info.payload).get(KeyType.ZPK)
    dialect = config_over.get("host_dialect", config_over.get("dialect", "ifsf"))
    if host is None:
        host = SmallHost(get_dialect(dialect))
    stop = trio.Event()
    async with trio.open_nursery() as outer:
        host_port = await outer.start(host.serve)
        if not link_up:
            host_port = _unused_port()
        config = switch_config(data_dir, host_port, **config_over)
        async with trio.open_nursery() as switch_nursery:
            sut = SwitchUnderTest(
                config, RunningSwitch({}, None), host, store, terminal_keys, keks, stop
            )
            sut.tpks, sut.zpk = tpks, zpk
            sut._nursery, sut._lmk = switch_nursery, lmk
            if link_up:
                await sut.start()
            else:
                sut.running = await switch_nursery.start(
                    _run_switch, config, sut.stop, sut._stopped, lmk
                )
            try:
                yield sut
            finally:
                sut.stop.set()
        outer.cancel_scope.cancel()
    store.close()


async def _run_switch(
    config: SwitchConfig,
    stop: trio.Event,
    stopped: trio.Event,
    lmk: Lmk | None,
    *,
    task_status: trio.TaskStatus[RunningSwitch] = trio.TASK_STATUS_IGNORED,
) -> None:
    try:
        await run_switch(config, stop=stop, lmk=lmk, task_status=task_status)
    finally:
        stopped.set()


def _unused_port() -> int:
    """A port nothing listens on (bound then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
