"""What `forecourt sim hsm` does for each host command, in key-block LMK mode.

Each handler takes the command's fields and returns the reply's fields, or
raises `Refusal` with the error code the manual gives for the failure (15 input
data, 10/11 source/destination key, 20 PIN block, 23 format code, 68 disabled,
...; docs/hsm.md "Error codes"). Clear keys and PINs exist only inside a handler.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

import attrs
from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.dukpt_tdes import TdesVariant, counter_of, is_valid_counter, tdes_session_key
from forecourt.keys.lmk import Lmk
from forecourt.keys.mac import MacAlgorithm, PreparedMac, prepare_mac
from forecourt.keys.payshield import commands as cmd
from forecourt.keys.payshield.wire import FieldError, Fields
from forecourt.keys.pin import PinBlockError, PinKey, open_block, seal_block

from .hsm_keys import BlockRefused, ClearKey, lmk_check_value, random_key, wrap_block, wrap_under
from .hsm_keys import open_block as open_key

FIRMWARE = "1500-FCSM"  # 9A, "xxxx-xxxx": this simulator's own number


class Refusal(Exception):
    """The command fails with `code` (two characters)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class OpenedKeys:
    """Key blocks already opened under the LMK, and their prepared MAC contexts,
    most recent last: a real HSM does not pay for a TR-31 unwrap and a key
    schedule on every command, and neither should its simulator (bounded)."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._keys: dict[str, ClearKey] = {}
        self._macs: dict[str, PreparedMac] = {}

    def key(self, lmk: Lmk, block: str) -> ClearKey:
        found = self._keys.pop(block, None)
        if found is None:
            found = open_key(lmk.key, block)
            if len(self._keys) >= self.limit:
                del self._keys[next(iter(self._keys))]
        self._keys[block] = found
        return found

    def mac(self, block: str, key: ClearKey, algorithm: MacAlgorithm) -> PreparedMac:
        found = self._macs.pop(block, None)
        if found is None:
            found = prepare_mac(key.key, algorithm)
            if len(self._macs) >= self.limit:
                del self._macs[next(iter(self._macs))]
        self._macs[block] = found
        return found


@attrs.frozen
class HsmState:
    lmk: Lmk = attrs.field(repr=False)
    disabled: frozenset[str] = frozenset()
    firmware: str = FIRMWARE
    opened: OpenedKeys = attrs.field(factory=OpenedKeys, repr=False, eq=False)


Handler = Callable[[HsmState, Fields], bytes]


def _key(state: HsmState, f: Fields, name: str, code: str) -> ClearKey:
    block = f.key_block(name)
    try:
        return state.opened.key(state.lmk, block)
    except BlockRefused:
        raise Refusal(code) from None


def _usage(key: ClearKey, *usages: str) -> None:
    if key.usage not in usages:
        raise Refusal("28")  # invalid key type for this command


# -- A0 / A6 / A8 / BU ----------------------------------------------------------------


def generate(state: HsmState, f: Fields) -> bytes:
    mode = f.take(1, "mode")
    if mode not in ("0", "1"):
        raise Refusal("15")
    if f.take(3, "key type") != cmd.KEY_TYPE_FROM_BLOCK:
        raise Refusal("04")
    if f.take(1, "key scheme") != "S":
        raise Refusal("26")
    zmk: ClearKey | None = None
    if mode == "1":
        if f.take(2, "ZMK/TMK flag") != ";0":
            raise Refusal("15")
        zmk = _key(state, f, "ZMK", "10")
        _usage(zmk, "K0")
        if f.take(1, "key scheme ZMK") != "S":
            raise Refusal("26")
    if f.take(1, "key block delimiter") != "#":
        raise Refusal("15")
    usage = f.take(2, "key usage")
    algorithm = cmd.ALGORITHMS_BY_CODE.get(f.take(2, "algorithm"))
    mode_of_use = f.take(1, "mode of use")
    version = f.numeric(2, "key version number")
    export = f.take(1, "exportability")
    f.numeric(2, "number of optional blocks")
    f.end("A0")
    if algorithm is None:
        raise Refusal("15")
    if export not in ("E", "N", "S") or (zmk is not None and export == "N"):
        raise Refusal("29")
    del version
    key = ClearKey(usage, algorithm, mode_of_use, export, random_key(algorithm))
    out = wrap_block(state.lmk, key)
    if zmk is not None:
        out += wrap_under(zmk, key)
    return (out + kcv(key.key, algorithm)).encode("ascii")


def import_key(state: HsmState, f: Fields) -> bytes:
    if f.take(3, "key type") != cmd.KEY_TYPE_FROM_BLOCK:
        raise Refusal("04")
    zmk = _key(state, f, "ZMK", "10")
    _usage(zmk, "K0")
    block = f.key_block("key under ZMK")
    if f.take(1, "key scheme LMK") != "S":
        raise Refusal("26")
    f.end("A6")
    try:
        key = open_key(zmk.key, block)
    except BlockRefused:
        raise Refusal("11") from None
    return (wrap_block(state.lmk, key) + kcv(key.key, key.algorithm)).encode("ascii")


def export_key(state: HsmState, f: Fields) -> bytes:
    if f.take(3, "key type") != cmd.KEY_TYPE_FROM_BLOCK:
        raise Refusal("04")
    zmk = _key(state, f, "ZMK", "10")
    _usage(zmk, "K0")
    key = _key(state, f, "key under LMK", "11")
    if f.take(1, "key scheme ZMK") != "S":
        raise Refusal("26")
    f.end("A8")
    if key.exportability != "E":
        raise Refusal("29")  # a non-exportable key stays in the HSM
    return (wrap_under(zmk, key) + kcv(key.key, key.algorithm)).encode("ascii")


def check_value(state: HsmState, f: Fields) -> bytes:
    if f.take(2, "key type code") != "FF":
        raise Refusal("04")
    if f.take(1, "key length flag") != "F":
        raise Refusal("05")
    key = _key(state, f, "key", "10")
    f.end("BU")
    return kcv(key.key, key.algorithm).encode("ascii")


# -- M6 / M8 ----------------------------------------------------------------------------


def _mac(state: HsmState, f: Fields, modes: tuple[str, ...]) -> tuple[bytes, bytes]:
    """(the computed 8-byte MAC, the fields left: M8's MAC)."""
    mode, input_format = f.take(1, "mode flag"), f.take(1, "input format flag")
    size, algorithm = f.take(1, "MAC size"), f.take(1, "MAC algorithm")
    padding = f.take(1, "padding method")
    if mode != "0" or input_format != "0" or size != cmd.MAC_SIZE_16H:
        raise Refusal("15")
    if f.take(3, "key type") != cmd.KEY_TYPE_FROM_BLOCK:
        raise Refusal("04")
    block = f.key_block("MAC key")
    try:
        key = state.opened.key(state.lmk, block)
    except BlockRefused:
        raise Refusal("10") from None
    length = f.hex(4, "message length")
    n = int(length, 16)
    if f.remaining() < n:
        raise Refusal("80")
    data = f.binary(n, "message")
    if algorithm == cmd.MAC_ALGORITHM_RETAIL and padding == cmd.PADDING_METHOD_1:
        _usage(key, "M3", "M1")
        if key.algorithm is not Algorithm.TDES2:
            raise Refusal("27")
        mac = state.opened.mac(block, key, MacAlgorithm.RETAIL).generate(data)
    elif algorithm == cmd.MAC_ALGORITHM_CMAC and padding == cmd.PADDING_NONE:
        _usage(key, "M6")
        if not key.algorithm.is_aes:
            raise Refusal("27")
        mac = state.opened.mac(block, key, MacAlgorithm.CMAC).generate(data)
    else:
        raise Refusal("15")
    if key.mode_of_use not in modes:
        raise Refusal("29")
    return mac, f.binary(f.remaining(), "rest")


def generate_mac(state: HsmState, f: Fields) -> bytes:
    mac, rest = _mac(state, f, ("C", "G"))
    if rest:
        raise Refusal("15")
    return mac.hex().upper().encode("ascii")


def verify_mac(state: HsmState, f: Fields) -> bytes:
    mac, rest = _mac(state, f, ("C", "V"))
    given = Fields(rest)
    expected = given.hex(16, "MAC")
    given.end("M8")
    if not hmac.compare_digest(bytes.fromhex(expected), mac):
        raise Refusal("01")
    return b""


# -- CA / CC ------------------------------------------------------------------------------


def _pan(f: Fields, formats: tuple[str, ...]) -> str:
    if cmd.PIN_FORMAT_ISO4 in formats:
        n = int(f.numeric(2, "account number length"))
        if not 12 <= n <= 19:
            raise Refusal("22")
        return f.numeric(n, "account number")
    return f.numeric(12, "account number") + "0"  # format 0 never reads the check digit


def _pin_key(key: ClearKey, pin_format: str) -> PinKey:
    if pin_format not in (cmd.PIN_FORMAT_ISO0, cmd.PIN_FORMAT_ISO4):
        raise Refusal("23")
    if (pin_format == cmd.PIN_FORMAT_ISO4) != key.algorithm.is_aes:
        raise Refusal("23")  # format 0 goes with TDES keys, format 4 with AES
    return PinKey(key.key, key.algorithm)


def translate_pin(state: HsmState, f: Fields) -> bytes:
    source = _key(state, f, "source key", "10")
    destination = _key(state, f, "destination key", "11")
    _usage(source, "P0")
    _usage(destination, "P0")
    max_length = f.numeric(2, "maximum PIN length")
    width = 32 if source.algorithm.is_aes else 16
    block = bytes.fromhex(f.hex(width, "source PIN block"))
    source_format = f.numeric(2, "source PIN block format")
    destination_format = f.numeric(2, "destination PIN block format")
    pan = _pan(f, (source_format, destination_format))
    f.end("CA")
    from_key = _pin_key(source, source_format)
    to_key = _pin_key(destination, destination_format)
    try:
        digits = open_block(from_key, block, pan)
    except PinBlockError:
        raise Refusal("20") from None
    try:
        if len(digits) > int(max_length):
            raise Refusal("24")
        out = seal_block(to_key, digits, pan)
        length = len(digits)
    finally:
        digits[:] = bytes(len(digits))
    return f"{length:02d}{out.hex().upper()}{destination_format}".encode("ascii")


def translate_dukpt_pin(state: HsmState, f: Fields) -> bytes:
    """G0: the PIN block under the TDES DUKPT PIN key the KSN derives from the BDK
    (keys/dukpt_tdes.py), to under the ZPK."""
    bdk = _key(state, f, "BDK", "10")
    destination = _key(state, f, "ZPK", "11")
    _usage(bdk, "B0")
    _usage(destination, "P0")
    if bdk.algorithm is not Algorithm.TDES2:
        raise Refusal("27")
    f.hex(3, "KSN descriptor")
    ksn = bytes.fromhex(f.hex(20, "KSN"))
    block = bytes.fromhex(f.hex(16, "source PIN block"))
    destination_format = f.numeric(2, "destination PIN block format")
    pan = _pan(f, (cmd.PIN_FORMAT_ISO0, destination_format))
    f.end("G0")
    if not is_valid_counter(counter_of(ksn)):
        raise Refusal("15")  # a counter no terminal uses (more than ten one-bits)
    to_key = _pin_key(destination, destination_format)
    pin_key = tdes_session_key(bdk.key, ksn, TdesVariant.PIN)
    try:
        digits = open_block(PinKey(pin_key, Algorithm.TDES2), block, pan)
    except PinBlockError:
        raise Refusal("20") from None
    try:
        out = seal_block(to_key, digits, pan)
        length = len(digits)
    finally:
        digits[:] = bytes(len(digits))
    return f"{length:02d}{out.hex().upper()}{destination_format}".encode("ascii")


# -- NC / B2 ------------------------------------------------------------------------------


def diagnostics(state: HsmState, f: Fields) -> bytes:
    f.end("NC")
    return (lmk_check_value(state.lmk) + state.firmware).encode("ascii")


def echo(state: HsmState, f: Fields) -> bytes:
    n = int(f.hex(4, "length"), 16)
    if f.remaining() != n:
        raise Refusal("80")
    return f.binary(n, "message")


HANDLERS: dict[str, Handler] = {
    "A0": generate,
    "A6": import_key,
    "A8": export_key,
    "BU": check_value,
    "M6": generate_mac,
    "M8": verify_mac,
    "CA": translate_pin,
    "CC": translate_pin,
    "G0": translate_dukpt_pin,
    "NC": diagnostics,
    "B2": echo,
}


def answer(state: HsmState, command: str, fields: bytes) -> tuple[str, bytes]:
    """(error code, reply fields) for one command."""
    handler = HANDLERS.get(command)
    if handler is None or command in state.disabled:
        return "68", b""
    try:
        return "00", handler(state, Fields(fields))
    except Refusal as refusal:
        return refusal.code, b""
    except FieldError:
        return "15", b""
