"""A terminal's side of a parameter download, for the tests: ask chunk by chunk,
apply what arrives (switch/params/wire.py, model.py)."""

from __future__ import annotations

import time

import attrs
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.codecs.network import local_time_1993, transmission_time
from forecourt.switch.params import ParamSet, ParamsPublish, apply_delta
from forecourt.switch.params.layout import parse_params
from forecourt.switch.params.wire import decode_records

from tests.switch.harness import Terminal

Records = dict[tuple[str, str], tuple[str, ...]]


def request(t: Terminal, held: int, chunk: int = 1, target: int | None = None) -> Message:
    elements: dict[int, str | bytes] = {20: f"{held:08d}", 21: f"{chunk:03d}000"}
    if target is not None:
        elements[22] = f"{target:08d}"
    now = time.time()
    fields = {
        "7": transmission_time(now),
        "11": t.next_stan(),
        "12": local_time_1993(now),
        "24": "305",
        "41": t.terminal_id,
        "48": encode_field48(elements),
    }
    return Message(mti="1304", fields=fields)


@attrs.frozen
class Chunk:
    code: str
    version: int
    chunk: int
    chunks: int
    status: str
    data: str


def read(answer: Message) -> Chunk:
    sub = decode_field48(answer.fields["48"])
    position = str(sub[21])
    return Chunk(
        answer.fields["39"],
        int(str(sub[20])),
        int(position[:3]),
        int(position[3:]),
        str(sub[23]),
        answer.fields.get("72", ""),
    )


@attrs.define
class HeldParams:
    """What the terminal holds: a version and its records."""

    version: int = 0
    records: Records = attrs.field(factory=dict)
    chunks_seen: list[Chunk] = attrs.field(factory=list)

    async def update(self, t: Terminal) -> None:
        """Download chunk by chunk to the latest version; restart when told to."""
        got = read(await t.exchange(request(t, self.version)))
        pending = [got]
        while True:
            self.chunks_seen.append(got)
            assert got.code == "300", got
            if got.status == "N":
                return
            if got.chunk == got.chunks:
                break
            got = read(await t.exchange(request(t, self.version, got.chunk + 1, got.version)))
            if got.status == "R":
                pending = []
            pending.append(got)
        base: Records = {} if pending[0].status == "F" else self.records
        changes = [c for chunk in pending for c in decode_records(chunk.data)]
        self.records = apply_delta(base, changes)
        self.version = pending[-1].version


def publish_op(doc: dict[str, object], note: str = "") -> ParamsPublish:
    return ParamsPublish(parse_params(doc).params, "test", note, time.time())


def records_of(doc: dict[str, object]) -> Records:
    return dict(ParamSet(parse_params(doc).params.records).records)
