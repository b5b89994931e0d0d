"""A relay with none of the switch's payment work, to measure what trio plumbing costs.

Run by ``bench/relay_floor.py``, not by hand. It accepts terminal connections, keeps
one connection to the acquirer simulator, sends each terminal frame upstream and
each answer back to the connection its (41, 11) came from. Modes:

- ``callback``: no task per request; the terminal reader writes upstream, the host
  reader writes the answer back (the floor of a callback-driven forward path);
- ``task``: a task per request that writes upstream and waits on an Event the host
  reader sets (the shape of the switch's forward path, without its work);
- ``codec``: ``task`` plus a full decode, MAC verify and MAC'd re-encode on both
  legs (the switch's codec and crypto work, without journal, routing or state);
- ``journal``: ``codec`` plus the switch's two durable journal writes a
  transaction (insert + event before sending upstream, update + event before
  answering) through its ``Journal`` on SQLite with ``synchronous = full``; no
  parked reversal, no duplicate window, no routing, no metrics.

    python bench/_null_relay.py MODE LISTEN_PORT HOST_PORT ZAK_HEX [JOURNAL_FILE]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import trio
from forecourt.codecs.dialect import decode, encode_with_mac, get_dialect, identify, mac_input
from forecourt.codecs.framing import FrameDecoder, Framing, encode_frame
from forecourt.keys.mac import MacAlgorithm, prepare_mac
from forecourt.switch.direct_write import FrameWriter
from forecourt.switch.journal.core import Journal, open_journal
from forecourt.switch.journal.model import Event, JournalRow, new_txn_id
from forecourt.switch.journal.writes import AddEvent, InsertTransaction

DIALECT = get_dialect("ifsf")
FRAMING = Framing("2b")
Key = tuple[str | None, str | None]


class _Waiter:
    __slots__ = ("answer", "event")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.answer = b""


async def main(mode: str, listen_port: int, host_port: int, zak: bytes, path: str) -> None:
    if mode != "journal":
        await relay(mode, listen_port, host_port, zak, None)
        return
    async with open_journal(Path(path)) as journal:
        await relay(mode, listen_port, host_port, zak, journal)


async def relay(
    mode: str, listen_port: int, host_port: int, zak: bytes, journal: Journal | None
) -> None:
    mac = prepare_mac(zak, MacAlgorithm.RETAIL)
    host = await trio.open_tcp_stream("127.0.0.1", host_port)
    upstream = FrameWriter(host)
    routes: dict[Key, FrameWriter] = {}
    waiters: dict[Key, _Waiter] = {}

    def rework(payload: bytes) -> bytes:
        """What the switch does to a message it relays: decode, verify, re-MAC."""
        message = decode(DIALECT, payload)
        if not mac.verify(mac_input(payload), payload[-8:]):
            raise RuntimeError("MAC mismatch")
        return encode_with_mac(DIALECT, message, mac.generate)

    async def read_host() -> None:
        frames = FrameDecoder(FRAMING)
        while data := await host.receive_some(65536):
            for frame in frames.feed(data):
                _, terminal_id, stan = identify(DIALECT, frame.payload)
                key = (terminal_id, stan)
                if mode == "callback":
                    writer = routes.pop(key, None)
                    if writer is not None:
                        await writer.send(encode_frame(FRAMING, frame.payload))
                else:
                    waiter = waiters.pop(key, None)
                    if waiter is not None:
                        waiter.answer = frame.payload
                        waiter.event.set()

    async def one_request(writer: FrameWriter, payload: bytes) -> None:
        reworks = mode in ("codec", "journal")
        if reworks:
            payload = rework(payload)
        _, terminal_id, stan = identify(DIALECT, payload)
        waiter = _Waiter()
        waiters[(terminal_id, stan)] = waiter
        txn_id = ""
        if journal is not None and terminal_id and stan:
            txn_id = new_txn_id()
            now = time.time()
            await journal.write(
                InsertTransaction(JournalRow(txn_id, "relay", terminal_id, stan, "2", "1200", now)),
                AddEvent(Event(txn_id, now, "forwarded", "bank")),
            )
        await upstream.send(encode_frame(FRAMING, payload))
        await waiter.event.wait()
        answer = rework(waiter.answer) if reworks else waiter.answer
        if journal is not None and txn_id:
            await journal.write(
                *journal.update_ops(
                    txn_id, state="approved", action_code="000", answered_at=time.time()
                )
            )
        await writer.send(encode_frame(FRAMING, answer))

    async def terminal(stream: trio.SocketStream) -> None:
        writer = FrameWriter(stream)
        frames = FrameDecoder(FRAMING)
        async with trio.open_nursery() as nursery:
            while data := await stream.receive_some(65536):
                for frame in frames.feed(data):
                    if mode == "callback":
                        _, terminal_id, stan = identify(DIALECT, frame.payload)
                        routes[(terminal_id, stan)] = writer
                        await upstream.send(encode_frame(FRAMING, frame.payload))
                    else:
                        nursery.start_soon(one_request, writer, frame.payload)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_host)
        await trio.serve_tcp(terminal, listen_port, host="127.0.0.1")


if __name__ == "__main__":
    journal_file = sys.argv[5] if len(sys.argv) > 5 else ""
    trio.run(
        main,
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        bytes.fromhex(sys.argv[4]),
        journal_file,
    )
