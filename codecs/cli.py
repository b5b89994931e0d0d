"""`forecourt codec decode|encode`: look at a message on the wire, or build one.

Output never shows a full PAN, track data, PIN block, ICC data, keys or MAC:
the PAN is masked to first 6 + last 4 and the others are shown as their length.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from .dialect import DIALECT_NAMES, Dialect, decode, encode, get_dialect
from .errors import CodecError
from .fields import decode_field48, mask_pan
from .framing import HEADERS, FrameDecoder, Framing, encode_frame
from .message import Message

__all__ = ["register", "run_decode", "run_encode"]

# Shown as "<n bytes>" (binary, as decoded: hex) or "<n characters>" (text).
_LENGTH_ONLY = frozenset({"35", "36", "45", "52", "55", "64", "96", "128"})
_MASKED = frozenset({"2", "34"})
# ifsf field 48 sub-elements that carry a second card's track data.
_LENGTH_ONLY_48 = frozenset({9, 10, 33})


class _InputError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `codec decode` and `codec encode` to the `forecourt` command."""
    codec = subparsers.add_parser("codec", help="decode or encode ISO 8583 messages")
    actions = codec.add_subparsers(dest="codec_command", required=True)

    dec = actions.add_parser(
        "decode",
        help="hex on the wire -> JSON (PAN masked)",
        epilog="example: forecourt codec decode --dialect ifsf --framing 2b 0012313230300000...",
    )
    _common(dec)
    dec.add_argument("--tpdu", action="store_true", help="a 5-byte TPDU precedes the message")
    dec.add_argument("hex", metavar="HEX", help="the bytes, in hex")
    dec.set_defaults(func=run_decode)

    enc = actions.add_parser(
        "encode",
        help="JSON -> hex on the wire",
        epilog="""example: forecourt codec encode --dialect iso87ascii '{"mti": "0800",'"""
        """ "fields": {"11": "000001", "70": "301"}}'""",
    )
    _common(enc)
    enc.add_argument(
        "--tpdu", metavar="HEX", default=None, help="5-byte TPDU to put before the message"
    )
    enc.add_argument("json", metavar="JSON", help='{"mti": "1200", "fields": {"3": "000000"}}')
    enc.set_defaults(func=run_encode)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dialect", required=True, choices=DIALECT_NAMES, help="the message's dialect"
    )
    parser.add_argument(
        "--bitmap", choices=("binary", "hex"), default="binary", help="bitmap encoding (binary)"
    )
    parser.add_argument(
        "--framing", choices=HEADERS, default="none", help="length header before it (none)"
    )


def run_decode(args: argparse.Namespace) -> int:
    """Print the message as JSON; exit 2 with one line on bad input."""
    try:
        dialect = get_dialect(args.dialect, args.bitmap)
        data = _hex(args.hex, "HEX")
        framing = Framing(header=args.framing, tpdu=args.tpdu, max_frame=max(len(data), 0xFFFF))
        decoder = FrameDecoder(framing)
        frames = decoder.feed(data)
        if len(frames) != 1 or decoder.buffered:
            raise _InputError("expected exactly one complete frame")
        frame = frames[0]
        msg = decode(dialect, frame.payload)
        out: dict[str, Any] = {"mti": msg.mti, "fields": display_fields(dialect, msg.fields)}
        if frame.tpdu is not None:
            out["tpdu"] = frame.tpdu.hex().upper()
    except (CodecError, _InputError) as exc:
        return _fail(str(exc))
    print(json.dumps(out))  # ASCII escapes: safe on any terminal encoding
    return 0


def run_encode(args: argparse.Namespace) -> int:
    """Print the encoded message (with framing) as upper-case hex."""
    try:
        dialect = get_dialect(args.dialect, args.bitmap)
        msg = _message_from_json(args.json)
        tpdu = _hex(args.tpdu, "--tpdu") if args.tpdu is not None else None
        payload = encode(dialect, msg)
        framing = Framing(header=args.framing, tpdu=tpdu is not None, max_frame=len(payload) + 5)
        wire = encode_frame(framing, payload, tpdu)
    except (CodecError, _InputError) as exc:
        return _fail(str(exc))
    print(wire.hex().upper())
    return 0


def display_fields(dialect: Dialect, fields: Mapping[str, str]) -> dict[str, Any]:
    """Fields as they may be shown: PAN masked, secrets as their length."""
    shown: dict[str, Any] = {}
    for key in sorted(fields, key=int):
        value = fields[key]
        layout = dialect.layout.get(int(key))
        binary = layout is not None and layout.kind == "b"
        if key in _MASKED:
            shown[key] = mask_pan(value)
        elif key in _LENGTH_ONLY:
            shown[key] = _length(value, binary)
        elif key == "48" and binary:
            shown[key] = _display_48(value)
        else:
            shown[key] = value
    return shown


def _display_48(value: str) -> Any:
    try:
        elements = decode_field48(value)
    except CodecError:
        return _length(value, True)
    shown: dict[str, str] = {}
    for number, element in elements.items():
        if number in _LENGTH_ONLY_48:
            shown[str(number)] = f"<{len(element)} characters>"
        elif isinstance(element, bytes):
            shown[str(number)] = element.hex().upper()
        else:
            shown[str(number)] = element
    return shown


def _length(value: str, binary: bool) -> str:
    if binary:
        return f"<{len(value) // 2} bytes>"
    return f"<{len(value)} characters>"


def _hex(text: str, what: str) -> bytes:
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise _InputError(f"{what} is not hexadecimal") from None


def _message_from_json(text: str) -> Message:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _InputError(f"JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("mti"), str):
        raise _InputError('JSON must be an object with "mti" (string) and "fields" (object)')
    fields = doc.get("fields", {})
    if not isinstance(fields, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
    ):
        raise _InputError('"fields" must map field numbers to strings')
    return Message(doc["mti"], fields)


def _fail(reason: str) -> int:
    print(f"forecourt codec: error: {reason}", file=sys.stderr)
    return 2
