"""An offline advice of a batch (ifsf 1220/1221 carrying a batch number in 48-4).

Journalled and queued in SAF exactly as a single offline advice (flows/completion.py),
and recorded as a member of its batch in the same durable write: after a crash the
advice is its row, its SAF item and its membership, or none of them. A re-upload of
the advice is a retransmission (same terminal, class and STAN) and gets its journalled
answer without reaching this flow, so nothing is journalled or forwarded twice; its
flag `batch_<number>` makes it a copy however late it comes (batch_records.same_batch).
"""

from __future__ import annotations

from forecourt.codecs.message import Message
from forecourt.switch.batch_records import AddBatchAdvice, batch_flag, batch_of
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.flows.completion import complete
from forecourt.switch.transaction import minor_units


def in_a_batch(request: Message) -> bool:
    return batch_of(request) is not None


async def batch_advice(job: Job) -> Message:
    answer = await complete(job)
    record = job.txn
    batch = batch_of(job.request)
    if batch is not None and record.state == "approved":  # queued in SAF
        amount = minor_units(record.amount) or 0
        record.pending_ops.append(
            AddBatchAdvice(
                record.terminal_id, batch, record.stan, record.txn_id, amount, record.received_at
            )
        )
        record.flags = (*record.flags, batch_flag(batch))
    return answer


# accepted after a sign-off too: the fuel is in the tank
FLOW = Flow(FlowRules("batch_advice", needs_signed_on=False), batch_advice)
