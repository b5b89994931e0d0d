"""Wallet payment codes through the switch to the provider simulator over real HTTPS.

Each case is a terminal's sale (or refund, or reversal) through a real switch,
and what the provider's books say afterwards: the switch is judged by the money
at the provider, not by its own log.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from forecourt.codecs.payment_code import mask_payment_code

from tests.switch.wallet_rig import (
    APPROVE,
    BAD_SIGNATURE,
    CANCEL_UNANSWERED_TWICE,
    CODE,
    EXPIRED,
    FIRST_PAY_UNANSWERED,
    INVALID,
    NO_ANSWER,
    NO_FUNDS,
    USER_GIVES_UP,
    USER_PAYS,
    USER_TOO_SLOW,
    WalletRig,
    wallet_refund,
    wallet_sale,
    wallet_switch,
)


def _order(rig: WalletRig, txn_id: str) -> str:
    order = rig.provider.books.orders.get(f"FC{txn_id}")
    return "none" if order is None else order.state


async def test_immediate_success_is_approved_and_journalled_with_the_code_masked(
    tmp_path: Path,
) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, APPROVE)
        answer = await t.exchange(sale)
        assert answer.fields["39"] == "000"
        assert answer.fields["4"] == f"{APPROVE:012d}"
        assert "48" not in answer.fields  # the code is never echoed
        row = rig.row("T0000001", sale.fields["11"])
        assert row["state"] == "approved"
        assert row["masked_pan"] == mask_payment_code(CODE)
        assert _order(rig, row["txn_id"]) == "PAID"
        # the order number is the journal's transaction id: one order, one bill line
        (bill,) = [line for line in rig.provider.books.bill("").splitlines()[1:] if "PAY" in line]
        assert f"FC{row['txn_id']}" in bill
    journal = (tmp_path / "data" / "journal.db").read_bytes()
    assert CODE.encode() not in journal


@pytest.mark.parametrize(("amount", "code"), [(USER_PAYS, "000"), (USER_GIVES_UP, "100")])
async def test_user_paying_is_queried_until_the_customer_decides(
    tmp_path: Path, amount: int, code: str
) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, amount)
        answer = await t.exchange(sale)
        assert answer.fields["39"] == code
        row = rig.row("T0000001", sale.fields["11"])
        assert _order(rig, row["txn_id"]) == ("PAID" if code == "000" else "FAILED")
        queries = [r for r in rig.provider.received if r.path == "/v1/query"]
        assert len(queries) >= 2  # asked again while the customer was confirming


async def test_user_paying_past_the_terminal_timeout_ends_cancelled(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path, request_timeout_s=1.0) as rig, rig.terminal() as t:
        sale = wallet_sale(t, USER_TOO_SLOW)
        answer = await t.exchange(sale)
        assert answer.fields["39"] == "911"
        row = rig.row("T0000001", sale.fields["11"])
        await rig.settled("T0000001", sale.fields["11"], "reversed")
        assert _order(rig, row["txn_id"]) == "CANCELLED"


async def test_no_answer_to_pay_ends_cancelled(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path, request_timeout_s=1.0) as rig, rig.terminal() as t:
        sale = wallet_sale(t, NO_ANSWER)
        answer = await t.exchange(sale)
        assert answer.fields["39"] == "911"
        row = rig.row("T0000001", sale.fields["11"])
        await rig.settled("T0000001", sale.fields["11"], "reversed")
        assert _order(rig, row["txn_id"]) == "CANCELLED"  # paid at the provider, then reversed


async def test_bad_signature_is_never_success_and_the_payment_is_cancelled(
    tmp_path: Path,
) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, BAD_SIGNATURE)
        answer = await t.exchange(sale)
        # the provider really charged the customer and said so, but not verifiably
        assert answer.fields["39"] == "911"
        row = rig.row("T0000001", sale.fields["11"])
        assert row["state"] in ("reversal_pending", "reversed")
        await rig.settled("T0000001", sale.fields["11"], "reversed")
        assert _order(rig, row["txn_id"]) == "CANCELLED"


async def test_a_provider_with_another_secret_is_never_believed(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path, impostor=True) as rig:
        async with rig.terminal() as t:
            answer = await t.exchange(wallet_sale(t, APPROVE))
        # the provider refused the switch's signature (401, signed with the wrong
        # secret): not believed, and not a decline of the customer either
        assert answer.fields["39"] in ("909", "911")
        assert not rig.provider.books.orders


@pytest.mark.parametrize(
    ("amount", "code"), [(NO_FUNDS, "116"), (EXPIRED, "101"), (INVALID, "111")]
)
async def test_declines_in_the_terminals_action_codes(
    tmp_path: Path, amount: int, code: str
) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, amount)
        answer = await t.exchange(sale)
        assert answer.fields["39"] == code
        assert rig.row("T0000001", sale.fields["11"])["state"] == "declined"


async def test_a_lost_pay_answer_is_retried_under_the_same_order(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path, http_timeout_s=0.3) as rig, rig.terminal() as t:
        sale = wallet_sale(t, FIRST_PAY_UNANSWERED)
        answer = await t.exchange(sale)
        assert answer.fields["39"] == "000"
        pays = [r for r in rig.provider.received if r.path == "/v1/pay"]
        assert len(pays) == 2
        assert pays[0].body["order_no"] == pays[1].body["order_no"]
        assert len(rig.provider.books.orders) == 1
        assert (
            rig.provider.books.bill("").count("\nPAY") + rig.provider.books.bill("").count(",PAY,")
            == 1
        )


async def test_terminal_reversal_cancels_at_the_provider_once_it_answers(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path, http_timeout_s=0.3) as rig, rig.terminal() as t:
        sale = wallet_sale(t, CANCEL_UNANSWERED_TWICE)
        assert (await t.exchange(sale)).fields["39"] == "000"
        reversal = (await t.exchange(t.reversal(sale))).fields["39"]
        assert reversal == "400"  # accepted at once, carried out by SAF
        row = rig.row("T0000001", sale.fields["11"])
        assert _order(rig, row["txn_id"]) == "PAID"  # the first cancels went unanswered
        await rig.settled("T0000001", sale.fields["11"], "reversed")
        assert _order(rig, row["txn_id"]) == "CANCELLED"
        cancels = [r for r in rig.provider.received if r.path == "/v1/cancel"]
        assert len(cancels) == 3


async def test_partial_refunds_never_exceed_what_was_paid(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, APPROVE)
        assert (await t.exchange(sale)).fields["39"] == "000"
        first = await t.exchange(wallet_refund(t, sale, 600))
        assert first.fields["39"] == "000"
        too_much = await t.exchange(wallet_refund(t, sale, 500))
        assert too_much.fields["39"] == "110"  # 400 is left
        rest = await t.exchange(wallet_refund(t, sale, 400))
        assert rest.fields["39"] == "000"
        order = rig.provider.books.orders[f"FC{rig.row('T0000001', sale.fields['11'])['txn_id']}"]
        assert order.refunded == APPROVE
        assert sorted(order.refunds.values()) == [400, 600]


async def test_refund_above_the_sale_is_refused_before_the_provider(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, APPROVE)
        assert (await t.exchange(sale)).fields["39"] == "000"
        answer = await t.exchange(wallet_refund(t, sale, APPROVE + 1))
        assert answer.fields["39"] == "110"
        assert not [r for r in rig.provider.received if r.path == "/v1/refund"]


async def test_a_code_no_wallet_takes_has_no_route(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        answer = await t.exchange(wallet_sale(t, APPROVE, code="991234567890123456"))
        assert answer.fields["39"] == "100"
        assert not rig.provider.received


async def test_a_provider_certificate_from_another_ca_pays_nothing(tmp_path: Path) -> None:
    """The certificate is verified: a switch trusting another CA pays nothing."""
    from tests.switch.tls_pki import Pki

    other = Pki(tmp_path / "other")
    (tmp_path / "other").mkdir()
    ca = other.authority("stranger")
    async with wallet_switch(tmp_path, tls={"ca_file": str(ca.certificate)}) as rig:
        async with rig.terminal() as t:
            with trio.fail_after(10):
                answer = await t.exchange(wallet_sale(t, APPROVE))
        assert answer.fields["39"] in ("911", "912")
        assert not rig.provider.books.orders


async def test_a_partial_reversal_refunds_the_difference(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, APPROVE)
        assert (await t.exchange(sale)).fields["39"] == "000"
        # the pump delivered 600 of the 1000 approved: 400 goes back to the customer
        assert (await t.exchange(t.reversal(sale, final_amount=600))).fields["39"] == "400"
        row = rig.row("T0000001", sale.fields["11"])
        order = rig.provider.books.orders[f"FC{row['txn_id']}"]
        with trio.fail_after(10):
            while not order.refunds:
                await trio.sleep(0.05)
        assert list(order.refunds.values()) == [400] and order.state == "PAID"


async def test_a_terminal_retransmission_never_pays_twice(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path) as rig, rig.terminal() as t:
        sale = wallet_sale(t, USER_PAYS)
        await t.send(sale)
        await trio.sleep(0.1)
        await t.send(sale.with_fields({}, mti="1201"))  # the terminal's repeat
        answers = [await t.receive(timeout=5)]
        with trio.move_on_after(1.0):
            answers.append(await t.receive(timeout=5))
        assert {a.fields["39"] for a in answers} == {"000"}
        assert len([r for r in rig.provider.received if r.path == "/v1/pay"]) == 1
        assert len(rig.provider.books.orders) == 1
