"""A delta on the wire: records in field 72 ("data record"), cut into chunks.

A record is `<op><kind letter><key>`, then for an add or change `=` and the
values separated by `;`, and always a closing `\\` (the sub-field separator of
IFSF's field 43 and of field 63). `AP95=Unleaded 95;L;1.659;S\\` adds product
95, `DK476173******0010\\` deletes a block-list entry. A chunk holds whole records
only, at most `chunk_bytes` long; the file's checks (switch/params/layout.py)
keep every record far below the smallest chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import KIND_BY_LETTER, KIND_BY_NAME, Change, Delta

__all__ = ["MAX_CHUNKS", "chunks_of", "decode_records", "encode_change"]

MAX_CHUNKS = 999  # 48-21 counts chunks in three digits


def encode_change(change: Change) -> str:
    head = f"{change.op}{KIND_BY_NAME[change.kind].letter}{change.key}"
    if change.op == "D":
        return head + "\\"
    return f"{head}={';'.join(change.values)}\\"


def chunks_of(delta: Delta, chunk_bytes: int) -> tuple[str, ...]:
    """The delta's records in chunks of at most `chunk_bytes`, never splitting one;
    one empty chunk when there is nothing to change."""
    chunks: list[str] = []
    current = ""
    for change in delta.changes:
        record = encode_change(change)
        if len(record) > chunk_bytes:
            raise ValueError(f"a record is {len(record)} bytes, over a chunk of {chunk_bytes}")
        if len(current) + len(record) > chunk_bytes:
            chunks.append(current)
            current = ""
        current += record
    chunks.append(current)
    return tuple(chunks)


def decode_records(text: str) -> list[Change]:
    """The records of one chunk (the terminal's side); ValueError when malformed."""
    if text and not text.endswith("\\"):
        raise ValueError("a chunk must end with a record's closing \\")
    out: list[Change] = []
    for record in text.split("\\")[:-1]:
        if len(record) < 3 or record[0] not in "ACD" or record[1] not in KIND_BY_LETTER:
            raise ValueError(f"malformed record {record[:3]!r}")
        kind = KIND_BY_LETTER[record[1]]
        body = record[2:]
        if record[0] == "D":
            if "=" in body:
                raise ValueError("a delete carries no values")
            out.append(Change("D", kind.name, body))
            continue
        key, sep, values = body.partition("=")
        parts: Sequence[str] = values.split(";")
        if not sep or not key or len(parts) != len(kind.values):
            raise ValueError(f"a {kind.name} record needs {len(kind.values)} values")
        out.append(Change(record[0], kind.name, key, tuple(parts)))
    return out
