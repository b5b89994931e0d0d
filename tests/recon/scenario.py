"""A day with every reconciliation class planted: journal rows on the bank's route
and the bank's settlement file for them, with what each reference must end in.

Real journal (SQLite file or PostgreSQL), real files; only the party is made up,
because an acquirer's back office cannot run here.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

from forecourt.switch.config import SwitchConfig, parse_config
from forecourt.switch.journal import InsertTransaction, Journal, JournalRow, new_txn_id

DAY = dt.date(2026, 12, 1)
NOON = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp()

CONFIG = """
node = "n1"
data_dir = "{data_dir}"
{database}
[[acquirers]]
name = "bank"
host = "127.0.0.1"
port = 9
[[acquirers]]
name = "ledger"
kind = "ledger"
[[recon.parties]]
name = "bank"
kind = "acquirer"
[recon.parties.columns]
reference = "rrn"
amount = "amount"
currency = "currency"
datetime = "settled_at"
type = "type"
pan = "pan"
[[recon.parties]]
name = "bankfix"
kind = "acquirer"
settles = "bank"
format = "fixed"
[recon.parties.columns]
reference = "1-12"
amount = "13-24"
datetime = "25-38"
type = "39-40"
amount_unit = "minor"
datetime_format = "%Y%m%d%H%M%S"
[recon.parties.columns.types]
sale = ["00"]
refund = ["20"]
reversal = ["RV"]
[[recon.parties]]
name = "ledger"
kind = "ledger"
"""

# reference -> (journal state or None, journal amount, file lines [(type, amount)], class)
PLANTED: dict[str, tuple[str | None, int, list[tuple[str, int]], str]] = {
    "000000000001": ("approved", 1000, [("sale", 1000)], "matched"),
    "000000000002": ("approved", 2500, [("sale", 2500)], "matched"),
    "000000000003": ("approved", 700, [("refund", 700)], "matched"),
    "000000000004": ("approved", 4200, [], "switch_only"),
    "000000000005": (None, 0, [("sale", 999)], "party_only"),
    "000000000006": ("approved", 1000, [("sale", 1200)], "amount_differs"),
    "000000000007": ("approved", 3000, [("sale", 3000), ("sale", 3000)], "duplicate"),
    "000000000008": ("reversed", 1500, [("sale", 1500)], "reversed_settled"),
    "000000000009": ("reversed", 800, [("sale", 800), ("reversal", 800)], "matched"),
    "000000000010": ("declined", 500, [("sale", 500)], "party_only"),
}


def expected_classes() -> dict[str, set[str]]:
    """Class -> references found in it (a duplicate's first line is matched)."""
    out: dict[str, set[str]] = {}
    for ref, (_, _, lines, cls) in PLANTED.items():
        out.setdefault(cls, set()).add(ref)
        if cls == "duplicate" or (cls == "matched" and len(lines) > 1):
            out.setdefault("matched", set()).add(ref)
    return out


def config(tmp: Path, database: str | None = None) -> SwitchConfig:
    text = CONFIG.format(data_dir=tmp, database=f'database = "{database}"' if database else "")
    return parse_config(__import__("tomllib").loads(text), base_dir=tmp)


# the parties as read from CONFIG (no file is opened: data_dir is only named)
CONFIG_PARTIES = {p.name: p for p in config(Path("/nonexistent")).recon.parties}


def row(ref: str, state: str, amount: int, at: float, route: str = "bank") -> JournalRow:
    processing = "200000" if ref == "000000000003" else "000000"
    return JournalRow(
        txn_id=new_txn_id(), node="n1", terminal_id="T0000001", stan=ref[-6:], mti_class="2",
        request_mti="1200", received_at=at, state=state, amount=amount,
        approved_amount=amount if state != "declined" else None, currency="978",
        masked_pan="476173******0010", processing_code=processing, route=route, rrn=ref,
        auth_code="A" + ref[-5:], action_code="000" if state != "declined" else "116",
    )  # fmt: skip


async def journal_day(journal: Journal) -> None:
    """The planted rows, plus rows reconciliation must ignore (another route, another
    day, a pre-authorisation)."""
    rows = [
        row(ref, state, amount, NOON + i)
        for i, (ref, (state, amount, _, _)) in enumerate(PLANTED.items())
        if state is not None
    ]
    rows.append(row("000000000099", "approved", 100, NOON, route="ledger"))
    rows.append(row("000000000098", "approved", 100, NOON - 86400))
    await journal.write(*(InsertTransaction(r) for r in rows))


def csv_file(path: Path) -> Path:
    lines = ["rrn,amount,currency,settled_at,type,pan"]
    for i, (ref, (_, _, file_lines, _)) in enumerate(PLANTED.items()):
        for kind, amount in file_lines:
            lines.append(f"{ref},{amount},978,2026-12-01 13:{i:02d}:00,{kind},4761739001010010")
    lines.append("000000000097,100,978,2026-12-02 13:00:00,sale,")  # the next day: not today's
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fixed_file(path: Path) -> Path:
    codes = {"sale": "00", "refund": "20", "reversal": "RV"}
    out = []
    for i, (ref, (_, _, file_lines, _)) in enumerate(PLANTED.items()):
        for kind, amount in file_lines:
            out.append(f"{ref}{amount:012d}202612011{i:01d}0000{codes[kind]}")
    path.write_text("\n".join(out) + "\n", encoding="ascii")
    return path


def malformed_file(path: Path) -> Path:
    text = textwrap.dedent(
        """\
        rrn,amount,currency,settled_at,type,pan
        000000000001,1000,978,2026-12-01 13:00:00,sale,
        000000000002,25.00,978,2026-12-01 13:01:00,sale,
        """
    )
    path.write_text(text, encoding="utf-8")
    return path
