"""No key operation of the switch outside its security module (issue 22 part 1).

The switch holds keys as `KeyRef`s and every MAC, sign-on proof and PIN
translation goes through `SecurityModule`; the clear-key calls that came before
must not come back. This reads switch/ as syntax trees (not text, so comments and
docs may name them) and fails on:
- a call of the key store's clear-key methods (`pin_key`, `sign_on_mac`,
  `translate_pin_block`);
- any use of the in-process PIN translator (`SoftwarePinTranslator`, `PinTranslator`);
- a synchronous `check` / `verify` / `generate` call (one not awaited: a keyring's
  clear-key calls are the synchronous ones) on anything but the receivers listed
  in `ALLOWED`, each of which is not a payment key, or such a method handed on
  as a value (`encode_with_mac(dialect, answer, tak.generate)`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SWITCH = Path(__file__).resolve().parents[2] / "switch"

STORE_CLEAR_CALLS = frozenset({"pin_key", "sign_on_mac", "translate_pin_block"})
CLEAR_TRANSLATORS = frozenset({"SoftwarePinTranslator", "PinTranslator"})
SYNC_KEY_CALLS = frozenset({"check", "verify", "generate"})

# (file under switch/, receiver) -> why it is no MAC or PIN key of the switch
ALLOWED: dict[tuple[str, str], str] = {
    ("flows/stand_in.py", "policy"): "the stand-in policy's limits",
    ("pipeline.py", "self.roster"): "the cashier roster",
    ("terminals/registration.py", "_HASHER"): "an argon2 enrolment-code hash",
    ("authorisers/wallet/provider.py", "self._signer"): "a wallet provider's HMAC signature",
    ("grey/answering.py", "ic.tac_check"): "an IC fuel card's TAC (grey records)",
}


def _offences(name: str, source: str) -> list[str]:
    """What `source`, the file `name` under switch/, does that it must not."""
    tree = ast.parse(source, filename=name)
    awaited = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Await)}
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr, receiver = node.func.attr, ast.unparse(node.func.value)
            if attr in STORE_CLEAR_CALLS:
                found.append(f"{name}:{node.lineno} {receiver}.{attr}()")
            elif (
                attr in SYNC_KEY_CALLS
                and id(node) not in awaited
                and (name, receiver) not in ALLOWED
            ):
                found.append(f"{name}:{node.lineno} {receiver}.{attr}() not awaited")
        if isinstance(node, ast.Call):
            for arg in (*node.args, *(k.value for k in node.keywords)):
                if isinstance(arg, ast.Attribute) and arg.attr in SYNC_KEY_CALLS:
                    # a bound method handed on (encode_with_mac(d, m, tak.generate)):
                    # called synchronously by whoever takes it
                    found.append(f"{name}:{node.lineno} {ast.unparse(arg)} handed on")
        if isinstance(node, ast.Name) and node.id in CLEAR_TRANSLATORS:
            found.append(f"{name}:{node.lineno} {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in CLEAR_TRANSLATORS:
            found.append(f"{name}:{node.lineno} {node.attr}")
        elif isinstance(node, ast.alias) and node.name.split(".")[-1] in CLEAR_TRANSLATORS:
            found.append(f"{name}:{node.lineno} import {node.name}")
    return found


def test_the_switch_makes_no_clear_key_call() -> None:
    files = sorted(SWITCH.rglob("*.py"))
    assert len(files) > 50  # the tree was found
    offences = [
        o for f in files for o in _offences(f.relative_to(SWITCH).as_posix(), f.read_text())
    ]
    assert offences == []


def test_every_allowed_receiver_is_still_there() -> None:
    """An allowance whose call went away is removed, so the list stays short."""
    seen: set[tuple[str, str]] = set()
    for path in SWITCH.rglob("*.py"):
        name = path.relative_to(SWITCH).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                seen.add((name, ast.unparse(node.func.value)))
    assert set(ALLOWED) <= seen


@pytest.mark.parametrize(
    "source",
    [
        "def f(store):\n    return store.pin_key('T1')\n",
        "def f(store):\n    return store.sign_on_mac('T1')\n",
        "def f(store, b):\n    return store.translate_pin_block('T1', 'bank', b, '4')\n",
        "from forecourt.keys.pin import SoftwarePinTranslator\n",
        "import forecourt.keys.pin as p\nt = p.SoftwarePinTranslator()\n",
        "def f(ring, d, m):\n    return ring.verify(d, m)\n",
        "def f(ring, d, m):\n    return ring.check(d, m)\n",
        "def f(tak, d):\n    return tak.generate(d)\n",
        "async def f(ring, d, m):\n    return [ring.verify(d, m)]\n",
        "def f(policy, d, m):\n    return policy.verify(d, m)\n",  # allowed elsewhere only
        "def f(d, m, tak):\n    return encode_with_mac(d, m, tak.generate)\n",
    ],
)
def test_each_kind_of_clear_call_is_caught(source: str) -> None:
    """The checker itself: each kind it must refuse, refused."""
    assert _offences("probe.py", source), source


def test_awaited_module_calls_pass() -> None:
    source = (
        "async def f(ring, module, zak, d, m):\n"
        "    await ring.check_in(module, d, m)\n"
        "    await zak.verify(d, m)\n"
        "    return await zak.generate(d)\n"
    )
    assert _offences("probe.py", source) == []
