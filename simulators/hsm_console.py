"""`forecourt sim hsm form-key`: the HSM simulator's console, where custodians form a key.

A payShield forms a KEK, ZMK or BDK from its custodians' components at its own
console (FK), never through the host. This is that console for the simulator:
each custodian's component comes from their component file or a no-echo prompt,
is checked against its KCV, and the combined key against the custodians' KCV,
as `forecourt keys add-acquirer` reads components (keys/ceremony.py); what it
prints is the key under the simulator's LMK ('S' block) and its KCV: neither is
secret, and `forecourt keys add-terminal --kek-block` / `add-acquirer
--zmk-block` take them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from forecourt.keys.crypto import Algorithm, kcv, kcv_matches, xor

USAGES = {
    "K0": "a KEK or ZMK (key-encryption key)",
    "B0": "a BDK (DUKPT base derivation key)",
    "M3": "a TDES MAC key (a TDES terminal's sign-on key)",
    "M6": "an AES MAC key (an AES terminal's sign-on key)",
}
EXAMPLE = (
    "example: forecourt sim hsm form-key --data-dir /tmp/hsm --usage K0 --algorithm tdes2"
    " --component-file c1.txt --component-file c2.txt --component-kcv 1A2B3C"
    " --component-kcv 4D5E6F --kcv 08D7B4"
)


def add_form_key_parser(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "form-key",
        help="form a key from custodians' components at the HSM console; print its block",
        epilog=EXAMPLE,
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="the simulator's folder (its LMK, hsm-lmk.key, is made here on first use)",
    )
    p.add_argument("--lmk-file", type=Path, help="use this LMK file (64 hex, mode 0600) instead")
    p.add_argument(
        "--usage",
        required=True,
        choices=sorted(USAGES),
        help="TR-31 key usage: " + "; ".join(f"{k} {v}" for k, v in sorted(USAGES.items())),
    )
    p.add_argument(
        "--algorithm",
        required=True,
        choices=[a.value for a in Algorithm],
        help="the key's algorithm (a TDES KEK/ZMK is tdes2, an AES one aes256;"
        " a sign-on key tdes2 or aes128)",
    )
    p.add_argument(
        "--component-file",
        action="append",
        type=Path,
        metavar="PATH",
        help="a custodian's component file, once per component (else a no-echo prompt)",
    )
    p.add_argument(
        "--components",
        type=int,
        default=2,
        metavar="N",
        help="how many components the custodians type at the prompt (default 2)",
    )
    p.add_argument(
        "--component-kcv",
        action="append",
        metavar="HEX",
        help="a component's KCV, once per component in order (asked for when not given)",
    )
    p.add_argument("--kcv", metavar="HEX", help="the formed key's KCV (asked for when not given)")
    p.set_defaults(func=_form_key)


def _form_key(args: argparse.Namespace) -> int:
    from forecourt.keys.ceremony import (
        Custodians,
        check_kcv_text,
        check_sources,
        combined_kcv,
        read_components,
    )
    from forecourt.keys.component_files import CeremonyError
    from forecourt.keys.errors import KeysError

    from .hsm_keys import form_key, load_or_create_lmk

    algorithm = Algorithm(args.algorithm)
    try:
        files = args.component_file or []
        count = len(files) or args.components
        if not 2 <= count <= 9:
            raise CeremonyError("a key is formed from 2 to 9 components")
        custodians = Custodians.terminal()
        check_sources(custodians, files, count, args.component_kcv or [], args.kcv)
        if args.kcv is not None:
            check_kcv_text(args.kcv, "--kcv")
        lmk = load_or_create_lmk(args.data_dir, args.lmk_file)
        components = read_components(
            custodians, files, count, args.component_kcv or [], lambda _: algorithm
        )
        expected = combined_kcv(custodians, args.kcv, "key")
        key = components[0]
        for part in components[1:]:
            key = xor(key, part)
        if not kcv_matches(expected, kcv(key, algorithm)):
            raise CeremonyError(
                f"the key these components form does not match KCV {expected}; nothing formed"
            )
        block = form_key(lmk, components, args.usage, algorithm)
    except (CeremonyError, KeysError) as exc:
        print(f"forecourt sim hsm form-key: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        reason = (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)
        print(f"forecourt sim hsm form-key: error: {reason}", file=sys.stderr)
        return 2
    print(f"key block: {block}")
    print(f"KCV: {kcv(key, algorithm)}")
    print(f"usage {args.usage} ({USAGES[args.usage]}), {algorithm.value}, under LMK {lmk.kcv}")
    return 0
