"""kill -9 with wallet payments in flight: each ends paid and answered, or cancelled.

A real `forecourt serve` process pays 40 wallet sales at the provider simulator
(over HTTPS, in this process): half are paid at once, half wait for the customer
to confirm in the app. The switch is killed while the slow ones are still being
queried; a second process on the same data directory recovers. The terminals do
what terminals do when no answer came: they reverse their sale. Then, from the
provider's books: no order is paid at the provider unless its terminal was
told 000; every other order was cancelled (or never charged).
"""

from __future__ import annotations

import collections
import os
import time
from functools import partial
from pathlib import Path

import pytest
import trio
from forecourt.codecs.dialect import get_dialect
from forecourt.codecs.message import Message
from forecourt.keys.store import KeyStore
from forecourt.keys.wallet_secrets import hmac_secret
from forecourt.keys.wallet_signing import hmac_signer
from forecourt.simulators.wallet import WalletProvider, serve_wallet
from forecourt.simulators.wallet_rules import Action, WalletRule, WalletSimConfig

from tests import crash_harness as crash
from tests.switch.harness import Terminal, _unused_port
from tests.switch.tls_pki import Pki
from tests.switch.wallet_rig import MERCHANT, wallet_sale

pytestmark = pytest.mark.slow

TERMINALS = [f"W{n:07d}" for n in range(1, 41)]
FAST, SLOW = 1000, 2000
KILL_AFTER_S = 1.5


def _config(data_dir: Path, lmk_file: Path, port: int, base_url: str, ca: Path) -> str:
    wallet = crash.acquirer(
        kind="wallet", name="wallet", base_url=base_url, merchant_id=MERCHANT,
        request_timeout_s=10.0, http_timeout_s=2.0, query_initial_s=0.1, query_max_s=0.3,
    )  # fmt: skip
    route = '[[routes]]\nacquirer = "wallet"\npayment_code_prefixes = ["28"]\n'
    return crash.serve_config(
        data_dir, port, node="wallet-crash", default_route=None, lmk_file=lmk_file,
        saf={"backoff_initial_s": 0.1, "backoff_max_s": 0.5, "lease_s": 15.0}, dialect=None,
        terminals=TERMINALS, acquirers=f'{wallet}[acquirers.tls]\nca_file = "{ca}"\n{route}',
    )  # fmt: skip


async def _sell(
    port: int, terminal_id: str, sales: dict[str, Message], told: dict[str, str]
) -> None:
    stream = await crash.connect(port)
    terminal = Terminal(stream, get_dialect("ifsf"), terminal_id, None)
    sale = wallet_sale(terminal, FAST if int(terminal_id[1:]) % 2 else SLOW, _code(terminal_id))
    sales[terminal_id] = sale
    try:
        answer = await terminal.exchange(sale, timeout=30)
        told[terminal_id] = answer.fields["39"]
    except (
        EOFError,
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        OSError,
        trio.TooSlowError,
    ):
        pass  # killed: no answer
    finally:
        await stream.aclose()


async def _reverse(port: int, terminal_id: str, sale: Message) -> str:
    stream = await crash.connect(port)
    async with stream:
        terminal = Terminal(stream, get_dialect("ifsf"), terminal_id, None)
        answer = await terminal.exchange(terminal.reversal(sale), timeout=10)
        return answer.fields["39"]


async def test_kill_9_with_wallet_payments_in_flight(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    lmk_file = tmp_path / "lmk.key"
    store = KeyStore.init(data_dir, lmk_file=lmk_file)
    secret = os.urandom(32)
    store.wallet_secrets().put(hmac_secret("wallet", secret), time.time(), "test")
    store.close()
    pki = Pki(tmp_path)
    ca = pki.authority("wallet-ca")
    served = pki.issue(ca, "wallet", ips=["127.0.0.1"])
    rules = (WalletRule("confirms in the app", Action.USER_PAYING, amount=SLOW, paying_s=4.0),)
    provider = WalletProvider(
        WalletSimConfig(port=0, merchant_id=MERCHANT, rules=rules), hmac_signer(secret)
    )
    sales: dict[str, Message] = {}
    told: dict[str, str] = {}
    async with trio.open_nursery() as nursery:
        wallet_port = await nursery.start(
            lambda task_status: serve_wallet(
                provider, certificate=served.certificate, key=served.key, task_status=task_status
            )
        )
        base_url = f"https://127.0.0.1:{wallet_port}"
        port = _unused_port()
        config = tmp_path / "forecourt.toml"
        config.write_text(_config(data_dir, lmk_file, port, base_url, ca.certificate))
        async with crash.serving(config, log=tmp_path / "first.log") as first:
            await (await crash.connect(port)).aclose()
            await crash.kill_9_under_load(
                first,
                [partial(_sell, port, t, sales, told) for t in TERMINALS],
                after_s=KILL_AFTER_S,
            )
        answered = dict(told)
        paying_at_kill = sum(o.state == "PAYING" for o in provider.books.orders.values())

        port = _unused_port()
        config.write_text(_config(data_dir, lmk_file, port, base_url, ca.certificate))
        async with crash.serving(config, log=tmp_path / "second.log") as second:
            await (await crash.connect(port)).aclose()
            # the terminals that heard nothing reverse, as their timeout tells them to
            for terminal_id, sale in sales.items():
                if terminal_id not in answered:
                    assert await _reverse(port, terminal_id, sale) == "400"
            unanswered = {_code(t) for t in sales if t not in answered}
            with trio.fail_after(30):
                while any(
                    o.state in ("PAYING", "PAID")
                    for o in provider.books.orders.values()
                    if o.code in unanswered
                ):
                    await trio.sleep(0.1)
            assert await crash.stop(second) == 0
        nursery.cancel_scope.cancel()

    # the scenario did what it is for: some answered before the kill, some mid-payment
    assert 0 < len(answered) < len(TERMINALS), answered
    assert paying_at_kill > 0
    states = collections.Counter(o.state for o in provider.books.orders.values())
    print(
        f"answered before the kill {len(answered)}, paying at the kill {paying_at_kill}, {states}"
    )
    terminal_of = {_code(t): t for t in TERMINALS}
    for order in provider.books.orders.values():
        if not order.code:  # a cancel that came before its payment: the number is closed
            assert order.state == "CANCELLED"
            continue
        terminal_id = terminal_of[order.code]
        if order.state == "PAID":
            # paid at the provider: its terminal was told so, and did not reverse
            assert answered.get(terminal_id) == "000", (terminal_id, answered.get(terminal_id))
        else:
            assert order.state == "CANCELLED", (terminal_id, order.state)
    for terminal_id, code in answered.items():
        if code == "000":
            assert provider.books.orders_by_code(_code(terminal_id)) == ["PAID"], terminal_id


def _code(terminal_id: str) -> str:
    return f"28{int(terminal_id[1:]):016d}"
