"""`forecourt keys add-bdk | add-dukpt-terminal | dukpt-terminals`: DUKPT in the store.

Nothing secret is an argument: BDK components come from a no-echo prompt or
from files, and the initial key leaves only as two components, one per
custodian (screen or 0600 file). Output names keys by KCV; the BDK is never
printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from forecourt.keys import dukpt_ceremony
from forecourt.keys.ceremony import Custodians
from forecourt.keys.component_files import CeremonyError
from forecourt.keys.crypto import Algorithm
from forecourt.keys.store import KeyStore

__all__ = ["EXAMPLES", "register"]

Leaf = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]
OpenStore = Callable[[argparse.Namespace], KeyStore]

_C = "--config /etc/forecourt/forecourt.toml"
EXAMPLES = {
    "add-bdk": f"forecourt keys add-bdk bdk1 {_C} --algorithm aes128 --component-files /media/c",
    "add-dukpt-terminal": f"forecourt keys add-dukpt-terminal P0000001 {_C} --bdk bdk1"
    " --initial-key-id 1234567890123456 --component-files /media/c",
    "dukpt-terminals": f"forecourt keys dukpt-terminals {_C}",
}
_BDK_ALGORITHMS = {
    "aes128": Algorithm.AES128,
    "aes192": Algorithm.AES192,
    "aes256": Algorithm.AES256,
    "tdes2": Algorithm.TDES2,
}


def _hex(text: str, what: str) -> bytes:
    t = text.strip().replace(" ", "")
    try:
        return bytes.fromhex(t)
    except ValueError:
        raise CeremonyError(f"{what} must be hex digits") from None


def register(leaf: Leaf, open_store: OpenStore, actor: Callable[[], str]) -> None:
    """Add the DUKPT commands to `forecourt keys` (`leaf` adds the common options)."""

    def add_bdk(args: argparse.Namespace) -> int:
        algorithm = _BDK_ALGORITHMS[args.algorithm]
        if args.bdk_block:
            if not args.kcv:
                raise CeremonyError("--bdk-block goes with --kcv, the KCV the HSM console printed")
            with open_store(args) as store:
                check = store.dukpt().add_bdk_block(
                    args.name, algorithm, args.bdk_block, args.kcv, time.time(), actor()
                )
            print(f"BDK {args.name} stored ({algorithm.value}) from a console block; KCV {check}")
            return 0
        importing = args.import_components or bool(args.component_file)
        if args.component_files is not None and importing:
            raise CeremonyError("--component-files writes a new BDK; it does not go with --import")
        if not importing and (args.component_kcv or args.kcv):
            raise CeremonyError("--component-kcv and --kcv check an imported BDK: add --import")
        with open_store(args) as store:
            if importing:
                result = dukpt_ceremony.import_bdk(
                    store,
                    args.name,
                    algorithm,
                    custodians=Custodians.terminal(),
                    files=args.component_file or (),
                    count=args.components,
                    component_kcvs=args.component_kcv or (),
                    bdk_kcv=args.kcv,
                    actor=actor(),
                )
            else:
                result = dukpt_ceremony.new_bdk(
                    store,
                    args.name,
                    algorithm,
                    custodians=None if args.component_files else Custodians.terminal(),
                    component_dir=args.component_files,
                    actor=actor(),
                )
        print(f"BDK {result.name} stored ({result.algorithm.value}); KCV {result.kcv}")
        for i, ckcv in enumerate(result.component_kcvs, 1):
            print(f"  component {i} KCV {ckcv}")
        return 0

    def add_terminal(args: argparse.Namespace) -> int:
        ident = _hex(args.initial_key_id, "--initial-key-id")
        with open_store(args) as store:
            r = dukpt_ceremony.new_dukpt_terminal(
                store,
                args.terminal_id,
                args.bdk,
                ident,
                custodians=None if args.component_files else Custodians.terminal(),
                component_dir=args.component_files,
                actor=actor(),
            )
        t = r.terminal
        print(
            f"terminal {t.terminal_id} registered for {t.scheme.value} DUKPT under BDK {t.bdk}"
            f" (KCV {r.bdk_kcv}); initial key ID {t.initial_key_id.hex().upper()};"
            f" initial key KCV {r.kcv}"
        )
        for i, ckcv in enumerate(r.component_kcvs, 1):
            where = f" in {r.files[i - 1]} (mode 0600)" if r.files else ""
            print(f"  component {i} KCV {ckcv}{where}, for custodian {i} only")
        print("Load both components into the PIN pad's key loader; the switch holds no key of it.")
        return 0

    def terminals(args: argparse.Namespace) -> int:
        with open_store(args) as store:
            listed = store.dukpt().terminals()
        if not listed:
            print("no DUKPT terminals registered")
        for t in listed:
            print(
                f"{t.terminal_id}: {t.scheme.value} DUKPT, BDK {t.bdk}, initial key ID"
                f" {t.initial_key_id.hex().upper()}, counter {t.counter:#x},"
                f" refused KSNs {t.replays}"
            )
        return 0

    p = leaf("add-bdk", add_bdk, "store a DUKPT base derivation key (BDK) under split knowledge")
    p.add_argument("name", help="the BDK's name, as terminal groups name it (dukpt_bdk)")
    p.add_argument(
        "--algorithm",
        choices=sorted(_BDK_ALGORITHMS),
        required=True,
        help="aes128/aes192/aes256 for AES DUKPT (X9.24-3), tdes2 for TDES DUKPT (X9.24-1)",
    )
    p.add_argument(
        "--component-files",
        metavar="DIR",
        type=Path,
        help="write the new BDK's two components to DIR, one 0600 file each",
    )
    p.add_argument(
        "--import",
        dest="import_components",
        action="store_true",
        help="load a BDK the custodians bring, from its components",
    )
    p.add_argument(
        "--component-file",
        action="append",
        type=Path,
        metavar="PATH",
        help="a custodian's component file, once per component (else a no-echo prompt)",
    )
    p.add_argument(
        "--component-kcv",
        action="append",
        metavar="HEX",
        help="a component's KCV, once per component in order (asked for when not given)",
    )
    p.add_argument("--kcv", metavar="HEX", help="the BDK's KCV (asked for when not given)")
    p.add_argument(
        "--bdk-block",
        metavar="S...",
        help="payshield store: the BDK as the HSM console formed it (form-key --usage B0;"
        " with --kcv)",
    )
    p.add_argument(
        "--components",
        type=int,
        default=2,
        metavar="N",
        help="how many components the custodians type with --import (default 2)",
    )

    p = leaf(
        "add-dukpt-terminal",
        add_terminal,
        "register a DUKPT terminal: its initial key from the BDK, in components for injection",
    )
    p.add_argument("terminal_id", help="the terminal's id (field 41, 8 characters)")
    p.add_argument("--bdk", required=True, metavar="NAME", help="the BDK, as add-bdk named it")
    p.add_argument(
        "--initial-key-id",
        required=True,
        metavar="HEX",
        help="AES: the 8-byte initial key ID (16 hex digits: BDK ID and derivation ID);"
        " TDES: the initial KSN (20 hex digits, counter bits ignored)",
    )
    p.add_argument(
        "--component-files",
        metavar="DIR",
        type=Path,
        help="write the initial key's two components to DIR, one 0600 file each",
    )

    leaf("dukpt-terminals", terminals, "list DUKPT terminals and their KSN counters")
