"""The host commands a switch needs, as field layouts: request builders and reply
decoders, plain functions on bytes (docs/hsm.md, "Commands and field layouts").

Key-block LMK mode throughout: every key is 'S' followed by its block, the key
type field is 'FFF' (BU: 'FF' and length flag 'F': the block says what it is),
and A0's key-block fields (usage, algorithm, mode of use, version, exportability,
optional blocks) follow a '#'. PIN block format codes are payShield's: 01 (ISO
9564-1 format 0) and 48 (ISO format 4).
"""

from __future__ import annotations

import attrs
from forecourt.keys.crypto import Algorithm
from forecourt.keys.payshield.wire import FieldError, Fields

KEY_TYPE_FROM_BLOCK = "FFF"
KEY_SCHEME_KEY_BLOCK = "S"

# MAC algorithm and padding flags of M6/M8 (docs/hsm.md)
MAC_ALGORITHM_RETAIL = "3"  # ISO 9797-1 MAC algorithm 3 (X9.19 with a 2-key TDES key)
MAC_ALGORITHM_CMAC = "6"  # AES-CMAC (SP 800-38B / ISO 9797-1 algorithm 5)
PADDING_NONE = "0"
PADDING_METHOD_1 = "1"  # pad with 0x00 (ISO 9797-1 padding method 1)
MAC_SIZE_16H = "1"  # an 8-byte MAC as 16 hex characters
MAC_MESSAGE_MAX = 0xFFFF

PIN_FORMAT_ISO0 = "01"
PIN_FORMAT_ISO4 = "48"
MAX_PIN_LENGTH = "12"

ALGORITHM_CODES: dict[Algorithm, str] = {
    Algorithm.TDES2: "T2",
    Algorithm.TDES3: "T3",
    Algorithm.AES128: "A1",
    Algorithm.AES192: "A2",
    Algorithm.AES256: "A3",
}
ALGORITHMS_BY_CODE = {v: k for k, v in ALGORITHM_CODES.items()}


@attrs.frozen
class KeyBlockAttributes:
    """A0's key-block fields: TR-31 key usage, algorithm, mode of use, exportability."""

    usage: str
    algorithm: Algorithm
    mode_of_use: str
    exportability: str = "E"
    version: str = "00"

    def encode(self) -> bytes:
        return (
            f"#{self.usage}{ALGORITHM_CODES[self.algorithm]}{self.mode_of_use}"
            f"{self.version}{self.exportability}00"
        ).encode("ascii")


def _ascii(*parts: str) -> bytes:
    return "".join(parts).encode("ascii")


def account_field(pan: str, formats: tuple[str, ...]) -> str:
    """The account number field: 12N (the 12 rightmost PAN digits without the check
    digit) for format 0; for format 4, which needs the whole PAN, 2N length + PAN."""
    if not (1 <= len(pan) <= 19) or not pan.isascii() or not pan.isdigit():
        raise FieldError("account number: not a PAN")
    if PIN_FORMAT_ISO4 in formats:
        return f"{len(pan):02d}{pan}"
    return pan[:-1][-12:].rjust(12, "0")


# -- A0 generate a key ---------------------------------------------------------------


def a0_request(attributes: KeyBlockAttributes, zmk: str | None = None) -> bytes:
    mode = "0" if zmk is None else "1"
    out = _ascii(mode, KEY_TYPE_FROM_BLOCK, KEY_SCHEME_KEY_BLOCK)
    if zmk is not None:
        out += _ascii(";0", zmk, KEY_SCHEME_KEY_BLOCK)
    return out + attributes.encode()


@attrs.frozen
class GeneratedKey:
    under_lmk: str = attrs.field(repr=False)
    under_zmk: str | None = attrs.field(repr=False)
    kcv: str


def a1_reply(fields: bytes, under_zmk: bool) -> GeneratedKey:
    f = Fields(fields)
    lmk = f.key_block("key under LMK")
    zmk = f.key_block("key under ZMK") if under_zmk else None
    kcv = f.hex(6, "key check value")
    f.end("A1")
    return GeneratedKey(lmk, zmk, kcv)


# -- A6 import under a ZMK, A8 export under a ZMK ----------------------------------


def a6_request(zmk: str, cryptogram: str) -> bytes:
    return _ascii(KEY_TYPE_FROM_BLOCK, zmk, cryptogram, KEY_SCHEME_KEY_BLOCK)


def a7_reply(fields: bytes) -> tuple[str, str]:
    """(key under LMK, KCV)."""
    f = Fields(fields)
    block = f.key_block("key under LMK")
    kcv = f.hex(6, "key check value")
    f.end("A7")
    return block, kcv


def a8_request(zmk: str, key: str) -> bytes:
    return _ascii(KEY_TYPE_FROM_BLOCK, zmk, key, KEY_SCHEME_KEY_BLOCK)


def a9_reply(fields: bytes) -> tuple[str, str]:
    """(key under ZMK, KCV)."""
    f = Fields(fields)
    block = f.key_block("key under ZMK")
    kcv = f.hex(6, "key check value")
    f.end("A9")
    return block, kcv


# -- BU key check value ------------------------------------------------------------


def bu_request(key: str) -> bytes:
    return _ascii("FF", "F", key)


def bv_reply(fields: bytes) -> str:
    f = Fields(fields)
    kcv = f.hex(6, "key check value")
    f.end("BV")
    return kcv


# -- M6/M8 MAC generate and verify -----------------------------------------------------


def _mac_fields(algorithm: str, key: str, data: bytes) -> bytes:
    if len(data) > MAC_MESSAGE_MAX:
        raise FieldError("message: longer than FFFF bytes")
    padding = PADDING_METHOD_1 if algorithm == MAC_ALGORITHM_RETAIL else PADDING_NONE
    head = _ascii("0", "0", MAC_SIZE_16H, algorithm, padding, KEY_TYPE_FROM_BLOCK, key)
    return head + f"{len(data):04X}".encode("ascii") + data


def m6_request(algorithm: str, key: str, data: bytes) -> bytes:
    """Mode 0 (only block), input format 0 (binary), MAC size 1 (16H)."""
    return _mac_fields(algorithm, key, data)


def m7_reply(fields: bytes) -> bytes:
    f = Fields(fields)
    mac = f.hex(16, "MAC")
    f.end("M7")
    return bytes.fromhex(mac)


def m8_request(algorithm: str, key: str, data: bytes, mac: bytes) -> bytes:
    if len(mac) != 8:
        raise FieldError("MAC: not 8 bytes")
    return _mac_fields(algorithm, key, data) + mac.hex().upper().encode("ascii")


# -- CA/CC/G0 PIN translation ----------------------------------------------------------


def ca_request(
    tpk: str, zpk: str, pin_block: bytes, source_format: str, destination_format: str, pan: str
) -> bytes:
    """CA (TPK -> ZPK) and CC (ZPK -> ZPK) share this layout."""
    account = account_field(pan, (source_format, destination_format))
    return _ascii(
        tpk,
        zpk,
        MAX_PIN_LENGTH,
        pin_block.hex().upper(),
        source_format,
        destination_format,
        account,
    )


cc_request = ca_request


def g0_request(
    bdk: str, zpk: str, ksn: bytes, pin_block: bytes, destination_format: str, pan: str
) -> bytes:
    """G0 (TDES DUKPT -> ZPK): KSN descriptor 3H ('A05': 10-byte KSN of a 21-bit
    counter, our reading), KSN 20H, the source PIN block (format 0), destination
    format, account number."""
    if len(ksn) != 10:
        raise FieldError("KSN: not 10 bytes")
    account = account_field(pan, (PIN_FORMAT_ISO0, destination_format))
    return _ascii(
        bdk,
        zpk,
        "A05",
        ksn.hex().upper(),
        pin_block.hex().upper(),
        destination_format,
        account,
    )


@attrs.frozen(repr=False)
class TranslatedPin:
    pin_length: int
    pin_block: bytes
    pin_format: str

    def __repr__(self) -> str:
        return f"TranslatedPin(format={self.pin_format})"


def pin_reply(fields: bytes, name: str) -> TranslatedPin:
    """CB, CD and G1: PIN length 2N, destination PIN block, destination format 2N."""
    f = Fields(fields)
    length = int(f.numeric(2, "PIN length"))
    n = f.remaining() - 2
    if n not in (16, 32):
        raise FieldError("destination PIN block: not 16H or 32H")
    block = bytes.fromhex(f.hex(n, "destination PIN block"))
    pin_format = f.numeric(2, "destination PIN block format")
    f.end(name)
    return TranslatedPin(length, block, pin_format)


# -- NC diagnostics, B2 echo --------------------------------------------------------------


@attrs.frozen
class Diagnostics:
    lmk_check: str
    firmware: str


def nd_reply(fields: bytes) -> Diagnostics:
    f = Fields(fields)
    check = f.hex(16, "LMK check value")
    firmware = f.take(9, "firmware number")
    f.end("ND")
    return Diagnostics(check, firmware)


def b2_request(data: bytes) -> bytes:
    if len(data) > MAC_MESSAGE_MAX:
        raise FieldError("echo data: longer than FFFF bytes")
    return f"{len(data):04X}".encode("ascii") + data


def b3_reply(fields: bytes) -> bytes:
    return fields
