"""RSA-SHA256 providers: the switch signs with its private key, verifies with the provider's.

The same sale, reversal and refusal as with HMAC, over real HTTPS, with RSA-2048
keys made in the test; the key store holds the switch's private key and the
provider's public key, sealed under the LMK.
"""

from __future__ import annotations

from pathlib import Path

from tests.switch.wallet_rig import APPROVE, BAD_SIGNATURE, wallet_sale, wallet_switch


def _order(rig: object, txn_id: str) -> str:
    orders = rig.provider.books.orders  # type: ignore[attr-defined]
    return str(orders[f"FC{txn_id}"].state)


async def test_rsa_sale_then_reversal(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path, scheme="rsa-sha256") as rig, rig.terminal() as t:
        sale = wallet_sale(t, APPROVE)
        assert (await t.exchange(sale)).fields["39"] == "000"
        txn_id = rig.row("T0000001", sale.fields["11"])["txn_id"]
        assert _order(rig, txn_id) == "PAID"
        assert (await t.exchange(t.reversal(sale))).fields["39"] == "400"
        await rig.settled("T0000001", sale.fields["11"], "reversed")
        assert _order(rig, txn_id) == "CANCELLED"


async def test_rsa_bad_signature_is_never_success(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path, scheme="rsa-sha256") as rig, rig.terminal() as t:
        sale = wallet_sale(t, BAD_SIGNATURE)
        assert (await t.exchange(sale)).fields["39"] == "911"
        await rig.settled("T0000001", sale.fields["11"], "reversed")


async def test_rsa_provider_with_another_key_is_never_believed(tmp_path: Path) -> None:
    async with wallet_switch(tmp_path, scheme="rsa-sha256", impostor=True) as rig:
        async with rig.terminal() as t:
            answer = await t.exchange(wallet_sale(t, APPROVE))
        assert answer.fields["39"] != "000"
