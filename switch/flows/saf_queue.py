"""Queueing a terminal's reversal or advice for its authoriser, durable with the answer."""

from __future__ import annotations

from forecourt.codecs.family import Family
from forecourt.codecs.message import Message
from forecourt.switch.authoriser import Authoriser
from forecourt.switch.journal import Journal, JournalRow
from forecourt.switch.reversal import point_at_host_original, saf_payload
from forecourt.switch.transaction import TxnRecord
from forecourt.switch.translate import across_families, convert_mti


def queue_for_authoriser(
    journal: Journal,
    request: Message,
    family: Family,
    record: TxnRecord,
    authoriser: Authoriser,
    original: JournalRow | None,
) -> None:
    """Queue `request` in SAF, its original reference (56/90) rewritten to name what the
    party saw: the original's switch STAN and the field 32 it carried upstream."""
    host_family = authoriser.family
    upstream = across_families(request.with_fields({64: None, 128: None}), family, host_family)
    if original is not None and original.acquirer_stan is not None:
        upstream = point_at_host_original(
            upstream,
            host_family,
            convert_mti(original.request_mti, host_family),
            original.acquirer_stan,
            original.acquirer_id or authoriser.acquirer_id,
        )
    record.pending_ops.append(
        journal.saf_enqueue_op(record.txn_id, authoriser.name, upstream.mti, saf_payload(upstream))
    )
