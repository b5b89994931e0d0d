"""Domains with tables of their own in the journal's database (the ledger, grey
records, batches, ...): their write operations and how one is applied.

A domain's operation reads, decides and writes in turn, in the writer's
transaction, so it runs whole (never in PostgreSQL's pipeline) and answers one
value. Adding a domain is one row here; the journal's writer does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
from forecourt.switch.batch_records import BATCH_OPS, apply_batches
from forecourt.switch.day import DAY_OPS, apply_day
from forecourt.switch.grey import GREY_OPS, apply_grey
from forecourt.switch.journal.model import JournalError
from forecourt.switch.ledger import LEDGER_OPS, OverdraftRefused, apply_ledger
from forecourt.switch.params import PARAMS_OPS, apply_params
from forecourt.switch.recon import RECON_OPS, ItemRefused, MalformedFile, apply_recon
from forecourt.switch.status_records import STATUS_OPS, apply_status
from forecourt.switch.terminals import TERMINAL_OPS, apply_terminals

# apply(op, run, convert, lock) -> the op's result: ``run`` executes one statement,
# ``convert`` turns ``?`` placeholders into the backend's, ``lock`` is the backend's
# row-lock clause ("" on SQLite, " FOR UPDATE" on PostgreSQL)
Run = Callable[[str, Sequence[object]], object]
ApplyDomain = Callable[[object, Run, Callable[[str], str], str], object]


@attrs.frozen
class Domain:
    name: str
    ops: tuple[type, ...]
    apply: ApplyDomain
    # what the domain raises for a refusal the caller should see as a JournalError
    refusals: tuple[type[Exception], ...] = ()


DOMAINS: tuple[Domain, ...] = (
    Domain("ledger", LEDGER_OPS, apply_ledger, (OverdraftRefused,)),  # type: ignore[arg-type]
    Domain("terminals", TERMINAL_OPS, apply_terminals),  # type: ignore[arg-type]
    Domain("params", PARAMS_OPS, apply_params),  # type: ignore[arg-type]
    Domain("grey", GREY_OPS, apply_grey, (OverdraftRefused,)),  # type: ignore[arg-type]
    Domain("batches", BATCH_OPS, apply_batches),  # type: ignore[arg-type]
    Domain("status_queries", STATUS_OPS, apply_status),  # type: ignore[arg-type]
    Domain("business_day", DAY_OPS, apply_day),  # type: ignore[arg-type]
    Domain("recon", RECON_OPS, apply_recon, (MalformedFile, ItemRefused)),  # type: ignore[arg-type]
)
DOMAIN_OPS: tuple[type, ...] = tuple(t for d in DOMAINS for t in d.ops)


def apply_domain(
    op: object,
    run: Callable[[str, Sequence[object]], object],
    convert: Callable[[str], str],
    lock: str,
) -> object:
    """Run one domain operation (``isinstance(op, DOMAIN_OPS)``) whole; its result."""
    for domain in DOMAINS:
        if isinstance(op, domain.ops):
            try:
                return domain.apply(op, run, convert, lock)
            except domain.refusals as exc:
                raise JournalError(f"{domain.name}: {exc}") from None
    raise JournalError(f"no domain applies {type(op).__name__}")
