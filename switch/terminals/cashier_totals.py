"""A shift's totals per cashier, from the `operator_id` every transaction row carries.

The shift close journals them beside the totals per tender (`by_operator`), so a
station manager sees what each cashier took: approved purchases (debits), refunds
(credits), reversed and declined, each a count and an amount in minor units, over
every currency (a station has one). Rows taken with nobody signed on are under "-".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forecourt.switch.journal import Journal
from rich.table import Table

__all__ = ["NOBODY", "cashier_table", "cashier_totals"]

NOBODY = "-"

_BY_OPERATOR = """
    SELECT operator, category, count(*) AS n, CAST(coalesce(sum(amt), 0) AS BIGINT) AS total
    FROM (
        SELECT coalesce(operator_id, '-') AS operator,
            CASE
                WHEN mti_class = '2' AND state = 'approved'
                     AND substr(coalesce(processing_code, '00'), 1, 2) = '20'
                     THEN 'credit'
                WHEN mti_class = '2' AND state = 'approved' THEN 'debit'
                WHEN mti_class = '2' AND state = 'reversed' THEN 'reversed'
                WHEN mti_class IN ('1', '2') AND state = 'declined' THEN 'declined'
            END AS category,
            coalesce(approved_amount, amount, 0) AS amt
        FROM transactions
        WHERE terminal_id = ? AND shift_id = ?
    ) t
    WHERE category IS NOT NULL
    GROUP BY 1, 2
    ORDER BY 1, 2
    """


async def cashier_totals(
    journal: Journal, terminal_id: str, shift_id: str
) -> dict[str, dict[str, list[int]]]:
    """{operator id: {category: [count, amount]}} of one terminal shift."""
    out: dict[str, dict[str, list[int]]] = {}
    for r in await journal.view(_BY_OPERATOR, (terminal_id, shift_id)):
        out.setdefault(str(r["operator"]), {})[str(r["category"])] = [
            int(r["n"]),
            int(r["total"]),
        ]
    return out


def cashier_table(closed_totals: Mapping[str, Any] | None) -> Table | None:
    """The closed shift's totals per cashier as `forecourt journal totals` shows them;
    None for an open shift, or one closed before cashiers were totalled."""
    by_operator = (closed_totals or {}).get("by_operator")
    if not by_operator:
        return None
    t = Table(title="per cashier (at the shift close)")
    for col in ("cashier", "category", "count", "amount"):
        t.add_column(col)
    for operator, categories in sorted(by_operator.items()):
        for category, (count, amount) in sorted(categories.items()):
            t.add_row(operator, category, str(count), str(amount))
    return t
