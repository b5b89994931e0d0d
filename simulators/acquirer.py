"""Acquirer host simulator: an ISO 8583 host that answers by rules.

The reference host for tests, certification and benchmarks. Its per-message
path is kept lean: one decode, a rule scan, one encode, and all the answers a
read produced go out in one send (pipelined requests cost one syscall, not one
each). Nothing is logged per message; what reached the host is recorded in
memory (and optionally as JSON lines with the PAN masked) for tests to assert.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import attrs
import structlog
import trio
from forecourt.codecs.dialect import decode, encode, encode_with_mac, identify, mac_input
from forecourt.codecs.errors import CodecError, DecodeError
from forecourt.codecs.family import Family
from forecourt.codecs.framing import FrameDecoder, encode_frame, reply_tpdu
from forecourt.codecs.message import Message
from forecourt.codecs.mti import is_request, response_mti
from forecourt.codecs.network import NetworkFunction, network_function
from forecourt.keys.crypto import Algorithm, generate_key
from forecourt.keys.exchange import build_payload
from forecourt.keys.mac import MacAlgorithm, PreparedMac, prepare_mac
from forecourt.keys.model import KeyType

from ._toml import Table, load_toml
from .rules import ACTIONS, AccountConfig, Decision, Delay, HostLogic, Rule, resolve_code
from .wire import WireFormat, masked, parse_mac_key, parse_wire, wire_format

__all__ = [
    "AcquirerConfig",
    "AcquirerSimulator",
    "ReceivedRecord",
    "load_acquirer_config",
]

log = structlog.get_logger("forecourt.sim.acquirer")

# Request fields an answer carries back unchanged.
ECHOED = ("3", "4", "7", "11", "12", "13", "24", "32", "37", "41", "42", "49", "70")


@attrs.frozen
class AcquirerConfig:
    """Everything the simulated host needs; see conf/sim/acquirer.toml."""

    wire: WireFormat
    host: str = "127.0.0.1"
    port: int = 0
    rules: tuple[Rule, ...] = ()
    accounts: tuple[AccountConfig, ...] = ()
    zak: PreparedMac | None = attrs.field(default=None, repr=False)
    # Clear KEK (test only): the host stands in for a switch towards terminals and
    # delivers a fresh TAK at every sign-on / key change, then MACs with it.
    kek: bytes | None = attrs.field(default=None, repr=False)
    verify_mac: bool = True
    generate_mac: bool = True
    record_file: Path | None = None
    keep_records: int = 100_000
    seed: int | None = None


@attrs.frozen
class ReceivedRecord:
    """One message that reached the host and what it answered; the PAN is masked."""

    time: float
    connection: int
    mti: str | None
    stan: str | None
    masked_pan: str | None
    amount: str | None
    processing_code: str | None
    terminal_id: str | None
    action_code: str | None  # None: not answered (drop, close, undecodable)
    delivery: str  # answer, twice, late, drop, close, undecodable
    rule: str | None = None
    mac: str | None = None  # "ok", "bad", "absent" when a ZAK is configured
    approved_amount: str | None = None

    def as_json(self) -> str:
        return json.dumps(attrs.asdict(self), separators=(",", ":"))


def load_acquirer_config(path: str | Path) -> AcquirerConfig:
    """Read a host configuration TOML; SimConfigError names the key at fault."""
    source = str(path)
    return parse_acquirer_config(load_toml(path), source)


def parse_acquirer_config(data: dict[str, Any], source: str | None = None) -> AcquirerConfig:
    root = Table(data, "", source)
    listen = root.table("listen")
    host = listen.text("host", "127.0.0.1")
    port = listen.integer("port", 0, low=0)
    wire = parse_wire(listen)
    listen.done()
    family = wire.family

    mac = root.table("mac")
    zak = parse_mac_key(mac, "zak")
    kek = _parse_kek(mac)
    verify_mac = mac.flag("verify", True)
    generate_mac = mac.flag("generate", True)
    mac.done()

    record = root.table("record")
    record_file = record.opt_text("file")
    keep = record.integer("keep", 100_000, low=0)
    record.done()

    accounts = []
    for t in root.tables("accounts"):
        accounts.append(
            AccountConfig(t.text("name"), t.integer("balance", low=0), t.flag("per_card", False))
        )
        t.done()
    names = {a.name for a in accounts}

    rules = []
    for i, t in enumerate(root.tables("rules")):
        action = t.text("action", choices=ACTIONS)
        code = t.opt_text("code")
        if code is not None:
            try:
                resolve_code(code, family)
            except ValueError as exc:
                raise t.error("code", str(exc)) from None
        account = t.opt_text("account")
        if account is not None and account not in names:
            raise t.error("account", f"no account named {account!r}")
        if action == "partial" and account is None:
            raise t.error("account", "a partial approval needs an account with a balance")
        delay = _parse_delay(t)
        if action in ("delay", "late") and delay is None:
            raise t.error("delay_s", f"action {action!r} needs delay_s")
        rules.append(
            Rule(
                name=t.text("name", f"rule {i + 1}"),
                action=action,
                pan_prefixes=t.texts("pan_prefix"),
                amount_min=t.opt_integer("amount_min"),
                amount_max=t.opt_integer("amount_max"),
                mtis=t.texts("mti"),
                processing_codes=t.texts("processing_code"),
                code=code,
                delay=delay,
                account=account,
            )
        )
        t.done()
    seed = root.opt_integer("seed")
    root.done()
    return AcquirerConfig(
        wire=wire,
        host=host,
        port=port,
        rules=tuple(rules),
        accounts=tuple(accounts),
        zak=zak,
        kek=kek,
        verify_mac=verify_mac,
        generate_mac=generate_mac,
        record_file=Path(record_file) if record_file else None,
        keep_records=keep,
        seed=seed,
    )


def _parse_kek(t: Table) -> bytes | None:
    hex_key = t.opt_text("kek")
    if hex_key is None:
        return None
    try:
        kek = bytes.fromhex(hex_key)
    except ValueError:
        raise t.error("kek", "must be hex") from None
    if len(kek) not in (16, 32):
        raise t.error("kek", "must be a 2-key TDES (16 bytes) or AES-256 (32 bytes) key")
    return kek


def _parse_delay(t: Table) -> Delay | None:
    value = t.raw("delay_s")
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return Delay(float(value), float(value))
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] <= value[1]
    ):
        return Delay(float(value[0]), float(value[1]))
    raise t.error("delay_s", "must be seconds or [low, high] seconds")


class _CloseConnection(Exception):
    """A rule said to close the connection."""


class _Connection:
    """One accepted connection: its stream, a send lock and its late-answer tasks."""

    def __init__(self, number: int, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        self.number = number
        self.stream = stream
        self.nursery = nursery
        self.send_lock = trio.Lock()

    async def send(self, data: bytes) -> None:
        async with self.send_lock:
            await self.stream.send_all(data)


class AcquirerSimulator:
    """A simulated acquirer host.

    Start it in a nursery with `port = await nursery.start(sim.run)`; it serves
    until cancelled. `.received` holds what reached it (newest last, at most
    `keep_records` of them; the counts cover everything).
    """

    def __init__(self, config: AcquirerConfig) -> None:
        self.config = config
        self.wire = config.wire
        self.logic = HostLogic(config.wire.family, config.rules, config.accounts, config.seed)
        self.received: list[ReceivedRecord] = []
        self.port: int | None = None
        self.connections_accepted = 0
        self.open_connections = 0
        self._by_mti: collections.Counter[str] = collections.Counter()
        self._by_code: collections.Counter[str] = collections.Counter()
        self._total = 0
        self._numbers = itertools.count(1)
        self._rrn = itertools.count(int(time.time()) % 100_000 * 10_000_000)
        self._file: IO[str] | None = None
        self._pending_lines: list[str] = []
        self._family = config.wire.family
        self._taks: dict[str, PreparedMac] = {}
        self._tak_versions: dict[str, int] = {}
        self._mac_code = self.logic.code("mac_incorrect")
        self._format_code = self.logic.code("format_error")

    # -- counts -----------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Messages received (all of them, including those no longer in `.received`)."""
        return self._total

    def counts_by_mti(self) -> dict[str, int]:
        return dict(self._by_mti)

    def counts_by_action_code(self) -> dict[str, int]:
        """Answers sent by action code; "none" for messages left unanswered."""
        return dict(self._by_code)

    def count(
        self,
        mti: str | None = None,
        action_code: str | None = None,
        terminal_id: str | None = None,
        delivery: str | None = None,
    ) -> int:
        """Records in `.received` that match every criterion given."""
        return sum(
            1
            for r in self.received
            if (mti is None or r.mti == mti)
            and (action_code is None or r.action_code == action_code)
            and (terminal_id is None or r.terminal_id == terminal_id)
            and (delivery is None or r.delivery == delivery)
        )

    async def wait_received(self, n: int, mti: str | None = None, timeout: float = 5.0) -> None:
        """Wait until `n` matching records are in `.received` (raises trio.TooSlowError)."""
        with trio.fail_after(timeout):
            while self.count(mti=mti) < n:
                await trio.sleep(0.005)

    def balance(self, account: str, pan: str | None = None) -> int:
        """The current balance of an account (per-card accounts: of that PAN)."""
        return self.logic.ledger.balance(self.logic.ledger.balance_key(account, pan))

    # -- serving ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, report the bound port through `task_status`, serve until cancelled."""
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        self.port = int(listeners[0].socket.getsockname()[1])
        if self.config.record_file is not None:
            self._file = open(self.config.record_file, "a", encoding="utf-8")  # noqa: SIM115
        try:
            async with trio.open_nursery() as nursery:
                if self._file is not None:
                    nursery.start_soon(self._flush_records)
                await nursery.start(trio.serve_listeners, self._serve, listeners)
                log.info("acquirer_simulator_listening", host=self.config.host, port=self.port)
                task_status.started(self.port)
        finally:
            self._write_pending()
            if self._file is not None:
                self._file.close()
                self._file = None

    async def _flush_records(self) -> None:
        while True:
            await trio.sleep(0.2)
            self._write_pending()

    def _write_pending(self) -> None:
        if self._file is not None and self._pending_lines:
            self._file.write("".join(self._pending_lines))
            self._file.flush()
            self._pending_lines = []

    async def _serve(self, stream: trio.SocketStream) -> None:
        number = next(self._numbers)
        self.connections_accepted += 1
        self.open_connections += 1
        try:
            async with trio.open_nursery() as nursery:
                connection = _Connection(number, stream, nursery)
                try:
                    await self._read_loop(connection)
                except _CloseConnection:
                    pass
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                nursery.cancel_scope.cancel()
        finally:
            self.open_connections -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _read_loop(self, connection: _Connection) -> None:
        decoder = FrameDecoder(self.wire.framing)
        stream = connection.stream
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            try:
                frames = decoder.feed(data)
            except CodecError:
                return  # oversize or garbled header: the stream cannot be resynchronised
            out: list[bytes] = []
            for frame in frames:
                tpdu = reply_tpdu(frame.tpdu) if frame.tpdu is not None else None
                answer = self._handle(connection, frame.payload, tpdu)
                if answer is not None:
                    out.append(answer)
            if out:
                await connection.send(b"".join(out) if len(out) > 1 else out[0])

    # -- one message ------------------------------------------------------------------

    def _handle(self, connection: _Connection, payload: bytes, tpdu: bytes | None) -> bytes | None:
        """The framed immediate answer to one frame, or None (dropped, deferred, not a request).

        Deferred answers (delay, late) are started in the connection's nursery, so
        they die with the connection.
        """
        framing = self.wire.framing
        try:
            request = decode(self.wire.dialect, payload)
        except DecodeError:
            return encode_frame(framing, self._undecodable(connection, payload), tpdu)
        if not is_request(request.mti):
            self._record(connection, request, None, "not_a_request", None, None)
            return None
        mac_state = self._check_mac(request, payload)
        if mac_state == "bad" or (mac_state == "absent" and self.config.verify_mac):
            answer = self._answer(request, Decision("answer", self._mac_code))
            self._record(connection, request, self._mac_code, "answer", None, mac_state)
            return encode_frame(framing, answer, tpdu)

        decision = self.logic.decide(request)
        delivery = decision.delivery
        if delivery == "close":
            self._record(connection, request, None, "close", decision.rule, mac_state)
            raise _CloseConnection
        if delivery == "drop":
            self._record(connection, request, None, "drop", decision.rule, mac_state)
            return None
        answer = self._answer(request, decision)
        self._record(
            connection,
            request,
            decision.code,
            delivery,
            decision.rule,
            mac_state,
            decision.approved_amount,
        )
        framed = encode_frame(framing, answer, tpdu)
        if delivery == "twice":
            framed += framed
        if decision.delay_s > 0:
            connection.nursery.start_soon(self._send_later, connection, framed, decision.delay_s)
            return None
        return framed

    async def _send_later(self, connection: _Connection, framed: bytes, delay: float) -> None:
        await trio.sleep(delay)
        # The switch may have hung up before the late answer: nothing to deliver then.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await connection.send(framed)

    def _mac_key(self, request: Message) -> tuple[PreparedMac | None, bool]:
        """(the key for this message, whether it is a delivered terminal key)."""
        terminal_id = request.fields.get("41")
        if terminal_id is not None and self._taks:
            tak = self._taks.get(terminal_id)
            if tak is not None:
                return tak, True
        return self.config.zak, False

    def _check_mac(self, request: Message, payload: bytes) -> str | None:
        key, delivered = self._mac_key(request)
        if key is None or ((delivered or self.config.kek is not None) and request.mti[1] == "8"):
            return None  # towards terminals, as a switch: network messages carry no MAC
        mac_hex = request.fields.get("128") or request.fields.get("64")
        if mac_hex is None:
            return "absent"
        try:
            mac = bytes.fromhex(mac_hex)
        except ValueError:
            return "bad"
        return "ok" if key.verify(mac_input(payload), mac) else "bad"

    def _deliver_keys(self, request: Message, out: dict[str, str]) -> None:
        """Sign-on / key change from a terminal: a new TAK under its KEK in 96 / 48."""
        kek = self.config.kek
        terminal_id = request.fields.get("41")
        if kek is None or terminal_id is None:
            return
        if network_function(request) not in (NetworkFunction.SIGN_ON, NetworkFunction.KEY_CHANGE):
            return
        kek_algorithm = Algorithm.TDES2 if len(kek) == 16 else Algorithm.AES256
        tak_algorithm = Algorithm.TDES2 if len(kek) == 16 else Algorithm.AES128
        tak = generate_key(tak_algorithm)
        self._tak_versions[terminal_id] = version = self._tak_versions.get(terminal_id, 0) + 1
        payload = build_payload(kek, kek_algorithm, [(KeyType.TAK, version, tak_algorithm, tak)])
        if self._family == Family.ISO1993:
            out["96"] = payload.encode("ascii").hex().upper()
        else:
            out["48"] = payload
        self._taks[terminal_id] = prepare_mac(tak, MacAlgorithm.for_key(tak_algorithm))

    def _answer(self, request: Message, decision: Decision) -> bytes:
        fields = request.fields
        out = {k: fields[k] for k in ECHOED if k in fields}
        cls = request.mti[1]
        if cls in "12" and "37" not in out:
            out["37"] = f"{next(self._rrn) % 1_000_000_000_000:012d}"
        if decision.code is not None:
            out["39"] = decision.code
        if decision.approved_amount is not None:
            out["4"] = f"{decision.approved_amount:012d}"
        if decision.approval_code is not None:
            out["38"] = decision.approval_code
        self.logic.remember_reference(request, out)
        message = Message(response_mti(request.mti), out)
        key, _ = self._mac_key(request)
        if cls == "8" and self.config.kek is not None:
            self._deliver_keys(request, out)
            message = Message(message.mti, out)
            key = None  # a switch does not MAC its network answers
        if key is not None and self.config.generate_mac:
            return encode_with_mac(self.config.wire.dialect, message, key.generate)
        return encode(self.config.wire.dialect, message)

    def _undecodable(self, connection: _Connection, payload: bytes) -> bytes:
        mti, terminal_id, stan = identify(self.wire.dialect, payload)
        self._record_raw(connection, mti, stan, terminal_id)
        if mti is None or stan is None or not mti.isdigit() or not is_request(mti):
            raise _CloseConnection
        fields = {"11": stan}
        if terminal_id is not None:
            fields["41"] = terminal_id
        message = Message(response_mti(mti), {**fields, "39": self._format_code})
        try:
            return encode(self.wire.dialect, message)
        except CodecError:
            raise _CloseConnection from None

    # -- recording --------------------------------------------------------------------

    def _record(
        self,
        connection: _Connection,
        request: Message,
        code: str | None,
        delivery: str,
        rule: str | None,
        mac_state: str | None,
        approved_amount: int | None = None,
    ) -> None:
        fields = request.fields
        record = ReceivedRecord(
            time=time.time(),
            connection=connection.number,
            mti=request.mti,
            stan=fields.get("11"),
            masked_pan=masked(fields.get("2")),
            amount=fields.get("4"),
            processing_code=fields.get("3"),
            terminal_id=fields.get("41"),
            action_code=code,
            delivery=delivery,
            rule=rule,
            mac=mac_state,
            approved_amount=None if approved_amount is None else f"{approved_amount:012d}",
        )
        self._add(record)

    def _record_raw(
        self, connection: _Connection, mti: str | None, stan: str | None, terminal_id: str | None
    ) -> None:
        self._add(
            ReceivedRecord(
                time=time.time(),
                connection=connection.number,
                mti=mti,
                stan=stan,
                masked_pan=None,
                amount=None,
                processing_code=None,
                terminal_id=terminal_id,
                action_code=self._format_code if mti and stan else None,
                delivery="undecodable",
            )
        )

    def _add(self, record: ReceivedRecord) -> None:
        self._total += 1
        self._by_mti[record.mti or "?"] += 1
        self._by_code[record.action_code or "none"] += 1
        received = self.received
        received.append(record)
        keep = self.config.keep_records
        if keep and len(received) > 2 * keep:
            del received[:-keep]
        if self._file is not None:
            self._pending_lines.append(record.as_json() + "\n")


def simple_config(
    rules: Iterable[Rule] = (),
    accounts: Iterable[AccountConfig] = (),
    *,
    dialect: str = "ifsf",
    header: str = "2b",
    tpdu: bool = False,
    zak: PreparedMac | None = None,
    kek: bytes | None = None,
    verify_mac: bool = True,
    keep_records: int = 100_000,
) -> AcquirerConfig:
    """A configuration in code, for tests and the load generator's self-test."""
    return AcquirerConfig(
        wire=wire_format(dialect, header=header, tpdu=tpdu),
        rules=tuple(rules),
        accounts=tuple(accounts),
        zak=zak,
        kek=kek,
        verify_mac=verify_mac,
        keep_records=keep_records,
    )
