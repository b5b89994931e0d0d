"""forecourt.codecs: ISO 8583 dialects on pyiso8583, framing, message model,
field sub-structures and response-code tables. Depends on nothing of ours."""

from __future__ import annotations

from .dialect import Dialect, decode, encode, encode_with_mac, get_dialect, identify, mac_input
from .errors import CodecError, DecodeError, EncodeError, FrameTooLarge, MTIError, UnknownDialect
from .framing import Frame, FrameDecoder, Framing, encode_frame, reply_tpdu
from .message import Message

__all__ = [
    "CodecError",
    "DecodeError",
    "Dialect",
    "EncodeError",
    "Frame",
    "FrameDecoder",
    "FrameTooLarge",
    "Framing",
    "MTIError",
    "Message",
    "UnknownDialect",
    "decode",
    "encode",
    "encode_frame",
    "encode_with_mac",
    "get_dialect",
    "identify",
    "mac_input",
    "reply_tpdu",
]
