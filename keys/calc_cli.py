"""`forecourt keys calc ...`: calculators for test keys given on the command line."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from forecourt.keys.crypto import Algorithm, kcv
from forecourt.keys.errors import InvalidKey
from forecourt.keys.mac import aes_cmac, retail_mac

EXAMPLES = {
    "calc mac": "forecourt keys calc mac --algorithm retail --key 0123...3210 --data 31323030",
    "calc kcv": "forecourt keys calc kcv --key 0123456789ABCDEFFEDCBA9876543210",
}

Guard = Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]


class UsageError(Exception):
    """Bad input on the command line."""


def hex_argument(text: str, what: str) -> bytes:
    t = text.strip().replace(" ", "")
    if not t or not re.fullmatch(r"[0-9A-Fa-f]*", t) or len(t) % 2:
        raise UsageError(f"{what} must be an even number of hex digits")
    return bytes.fromhex(t)


_hex = hex_argument


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], _guarded: Guard) -> None:
    calc = sub.add_parser("calc", help="calculators for test keys", allow_abbrev=False)
    csub = calc.add_subparsers(dest="calc_command", required=True)
    p = csub.add_parser(
        "mac", help="MAC of DATA under KEY", epilog=f"example: {EXAMPLES['calc mac']}"
    )
    p.add_argument(
        "--algorithm",
        choices=["retail", "cmac"],
        required=True,
        help="retail: ISO 9797-1 alg. 3 (TDES); cmac: AES-CMAC",
    )
    p.add_argument("--key", required=True, metavar="HEX", help="a TEST key, clear, in hex")
    p.add_argument("--data", required=True, metavar="HEX", help="the data, in hex")
    p.set_defaults(func=_guarded(_calc_mac))
    p = csub.add_parser("kcv", help="KCV of KEY", epilog=f"example: {EXAMPLES['calc kcv']}")
    p.add_argument("--key", required=True, metavar="HEX", help="a TEST key, clear, in hex")
    p.add_argument(
        "--algorithm",
        choices=["tdes", "aes"],
        help="default: AES for 32 bytes, else TDES",
    )
    p.set_defaults(func=_guarded(_calc_kcv))


def _calc_mac(args: argparse.Namespace) -> int:
    key = _hex(args.key, "--key")
    data = _hex(args.data, "--data") if args.data.strip() else b""
    try:
        mac = retail_mac(key, data) if args.algorithm == "retail" else aes_cmac(key, data)
    except InvalidKey as exc:
        raise UsageError(str(exc)) from None
    print(mac.hex().upper())
    return 0


def _calc_kcv(args: argparse.Namespace) -> int:
    key = _hex(args.key, "--key")
    if args.algorithm == "aes" or (args.algorithm is None and len(key) == 32):
        algorithm = {16: Algorithm.AES128, 24: Algorithm.AES192, 32: Algorithm.AES256}.get(len(key))
    else:
        algorithm = {16: Algorithm.TDES2, 24: Algorithm.TDES3}.get(len(key))
    if algorithm is None:
        raise UsageError("key length does not fit the algorithm (TDES 16/24, AES 16/24/32 bytes)")
    print(kcv(key, algorithm))
    return 0
