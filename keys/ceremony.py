"""The key ceremony: a master key (terminal KEK, acquirer ZMK) under split knowledge.

Each custodian sees only their own component: a new KEK's components are shown
one at a time, with the screen cleared between custodians, or written to one
0600 file each; components for import are typed at a no-echo prompt or read
from files, never taken from the command line (where `ps` and shell history
would keep them). On import every component's KCV and the combined KCV are
checked before anything is stored, so a mistyped component is named and never
becomes a key.
"""

from __future__ import annotations

import getpass
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from forecourt.keys import owners, provisioning
from forecourt.keys.component_files import (
    CeremonyError,
    grouped,
    parse_component,
    read_component_file,
    write_component_files,
)
from forecourt.keys.crypto import Algorithm, Family, kcv
from forecourt.keys.errors import DuplicateOwner
from forecourt.keys.model import AcquirerInfo, KekCeremony
from forecourt.keys.provisioning import MasterKey
from forecourt.keys.store import KeyStore

CLEAR_SCREEN = "\033[H\033[2J\033[3J"  # home, clear screen, clear scrollback
TERMINAL_COMPONENTS = 2
_KCV = re.compile(r"^[0-9A-Fa-f]{4}([0-9A-Fa-f]{2})?$")


class Custodians:
    """The console the custodians use: prompts, no-echo entry, screen clearing.

    `Custodians.terminal()` is the operator's terminal (getpass for components);
    given streams serve a test or any other driver.
    """

    def __init__(
        self, stdin: TextIO, stdout: TextIO, secret: Callable[[str], str] | None = None
    ) -> None:
        self._in = stdin
        self._out = stdout
        self._secret = secret

    @classmethod
    def terminal(cls) -> Custodians | None:
        """The operator's terminal, or None when stdin or stdout is not one."""
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            return None
        return cls(sys.stdin, sys.stdout, getpass.getpass)

    def say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def ask(self, prompt: str) -> str:
        """A line the operator types, echoed (KCVs, which are not secret)."""
        self._out.write(prompt)
        self._out.flush()
        line = self._in.readline()
        if not line:
            raise EOFError
        return line.strip()

    def secret(self, prompt: str) -> str:
        """A line typed without echo (a component)."""
        if self._secret is not None:
            return self._secret(prompt).strip()
        return self.ask(prompt)

    def wait(self, prompt: str) -> None:
        self.ask(f"{prompt} ")

    def clear(self) -> None:
        self._out.write(CLEAR_SCREEN)
        self._out.flush()


def _abandoned(where: str) -> CeremonyError:
    return CeremonyError(f"ceremony abandoned {where}; nothing stored: run the command again")


def _check_new_owner(store: KeyStore, name: str) -> None:
    if name in {o.name for o in store.owners()}:
        raise DuplicateOwner(f"{name!r} is already registered")


def check_kcv_text(text: str, what: str) -> str:
    """A KCV as an operator gives it: 4 or 6 hex digits."""
    t = text.strip().replace(" ", "")
    if not _KCV.match(t):
        raise CeremonyError(f"{what} must be 4 or 6 hex digits")
    return t.upper()


# -- a new KEK ----------------------------------------------------------------


def new_terminal(
    store: KeyStore,
    terminal_id: str,
    family: Family,
    *,
    custodians: Custodians | None,
    component_dir: Path | None = None,
    actor: str,
) -> KekCeremony:
    """Make a KEK, hand each component to its custodian, then store the KEK.

    The KEK is stored only after every component was shown and confirmed (or
    written), so a ceremony broken off half way leaves nothing behind.
    """
    owners.check_terminal_id(terminal_id)
    _check_new_owner(store, terminal_id)
    if component_dir is None and custodians is None:
        raise CeremonyError(
            "add-terminal shows each KEK component on a terminal, one custodian at a time;"
            " without a terminal give --component-files DIR"
        )
    kek = provisioning.terminal_kek(family)
    label = f"terminal {terminal_id}"
    written: list[Path] = []
    if component_dir is not None:
        written = write_component_files(component_dir, terminal_id, label, kek)
    else:
        assert custodians is not None
        show_components(custodians, label, kek)
    try:
        return store.add_terminal(terminal_id, family, actor=actor, components=kek.components)
    except BaseException:
        for path in written:  # a key that exists nowhere else must not linger in files
            path.unlink(missing_ok=True)
        raise


def show_components(
    custodians: Custodians, label: str, master: MasterKey, what: str = "KEK"
) -> None:
    """Show one component at a time; the next custodian's only after the screen was cleared."""
    n = len(master.components)
    custodians.say(
        f"{label}: a new {master.algorithm.value} {what} in {n} components, one per custodian."
    )
    for i, component in enumerate(master.components, 1):
        try:
            custodians.wait(f"custodian {i}, alone at the screen: press Enter to see component {i}")
        except (EOFError, KeyboardInterrupt):
            raise _abandoned(f"before component {i} was shown") from None
        try:
            custodians.say(f"  component {i}:     {grouped(component)}")
            custodians.say(f"  component {i} KCV: {kcv(component, master.algorithm)}")
            custodians.wait(f"custodian {i}: record component {i}, then press Enter to clear")
        except (EOFError, KeyboardInterrupt):
            raise _abandoned(f"while component {i} was shown") from None
        finally:
            custodians.clear()


# -- components brought by custodians ------------------------------------------


def read_components(
    custodians: Custodians | None,
    files: Sequence[Path],
    count: int,
    component_kcvs: Sequence[str],
    algorithm_of: Callable[[bytes], Algorithm],
) -> list[bytes]:
    """Each component from its file or the no-echo prompt, checked against its KCV at once."""
    kcvs = [check_kcv_text(k, f"component {i} KCV") for i, k in enumerate(component_kcvs, 1)]
    components: list[bytes] = []
    algorithm: Algorithm | None = None
    for i in range(1, count + 1):
        try:
            if files:
                component = read_component_file(files[i - 1], i)
            else:
                assert custodians is not None
                text = custodians.secret(f"custodian {i}: component {i} (hex, not shown): ")
                component = parse_component(text, f"component {i}")
            algorithm = algorithm or algorithm_of(component)
            if kcvs:
                expected = kcvs[i - 1]
            else:
                assert custodians is not None
                expected = check_kcv_text(
                    custodians.ask(f"component {i} KCV: "), f"component {i} KCV"
                )
        except (EOFError, KeyboardInterrupt):
            raise _abandoned(f"at component {i}") from None
        provisioning.check_component(i, component, algorithm, expected)
        if component in components:  # one custodian's component twice: no split knowledge
            j = components.index(component) + 1
            raise CeremonyError(
                f"component {i} is the same as component {j}: each custodian brings their own"
            )
        if custodians is not None:
            custodians.say(f"  component {i} matches its KCV")
        components.append(component)
    return components


def _check_sources(
    custodians: Custodians | None,
    files: Sequence[Path],
    count: int,
    component_kcvs: Sequence[str],
    combined_kcv: str | None,
) -> None:
    """KCVs one per component; without a terminal, everything from files and options."""
    if component_kcvs and len(component_kcvs) != count:
        raise CeremonyError(f"give --component-kcv once per component ({count})")
    if custodians is not None:
        return
    missing = [
        what
        for what, given in (
            ("--component-file PATH for each component", files),
            ("--component-kcv HEX for each component", component_kcvs),
            ("--kcv HEX", combined_kcv is not None),
        )
        if not given
    ]
    if missing:
        raise CeremonyError(f"no terminal to prompt on: give {', '.join(missing)}")


def _combined_kcv(custodians: Custodians | None, given: str | None, what: str) -> str:
    if given is not None:
        return check_kcv_text(given, "--kcv")
    if custodians is None:
        raise CeremonyError(f"give --kcv HEX, the {what} KCV the custodians recorded")
    try:
        return check_kcv_text(custodians.ask(f"{what} KCV: "), f"{what} KCV")
    except (EOFError, KeyboardInterrupt):
        raise _abandoned(f"at the {what} KCV") from None


def import_terminal(
    store: KeyStore,
    terminal_id: str,
    family: Family,
    *,
    custodians: Custodians | None,
    files: Sequence[Path] = (),
    component_kcvs: Sequence[str] = (),
    kek_kcv: str | None = None,
    actor: str,
) -> KekCeremony:
    """Load a KEK the terminal already holds from its two custodians' components."""
    owners.check_terminal_id(terminal_id)
    if files and len(files) != TERMINAL_COMPONENTS:
        raise CeremonyError("a KEK is loaded from two components: give --component-file twice")
    if kek_kcv is not None:
        check_kcv_text(kek_kcv, "--kcv")
    _check_new_owner(store, terminal_id)
    _check_sources(custodians, files, TERMINAL_COMPONENTS, component_kcvs, kek_kcv)
    algorithm = family.kek_algorithm
    components = read_components(
        custodians, files, TERMINAL_COMPONENTS, component_kcvs, lambda _: algorithm
    )
    expected = _combined_kcv(custodians, kek_kcv, "KEK")
    provisioning.check_master(provisioning.terminal_kek(family, components), expected, "the KEK")
    return store.add_terminal(terminal_id, family, actor=actor, components=components)


def import_acquirer(
    store: KeyStore,
    name: str,
    *,
    custodians: Custodians | None,
    files: Sequence[Path] = (),
    count: int = 2,
    component_kcvs: Sequence[str] = (),
    zmk_kcv: str | None = None,
    actor: str,
) -> AcquirerInfo:
    """Form an acquirer link's ZMK from its custodians' components (2 to 9)."""
    owners.check_acquirer_name(name)
    if files:
        count = len(files)
    if not 2 <= count <= 9:
        raise CeremonyError("a ZMK is made of 2 to 9 components")
    if zmk_kcv is not None:
        check_kcv_text(zmk_kcv, "--kcv")
    _check_new_owner(store, name)
    _check_sources(custodians, files, count, component_kcvs, zmk_kcv)
    components = read_components(
        custodians, files, count, component_kcvs, lambda c: provisioning.zmk_algorithm(len(c))
    )
    expected = _combined_kcv(custodians, zmk_kcv, "ZMK")
    return store.add_acquirer(name, components, expected_kcv=expected, actor=actor)


# the DUKPT ceremonies (keys/dukpt_ceremony.py) share these steps
check_new_owner = _check_new_owner
check_sources = _check_sources
combined_kcv = _combined_kcv
