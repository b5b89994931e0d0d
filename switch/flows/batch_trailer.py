"""Batch trailer (ifsf 1604, function code 691): the end of a batch upload of offline
advices, with the terminal's count and amount (48-4 batch number, 48-57 totals).

Checked against the advices the journal holds for that batch, answered by the switch
and never sent upstream: 39 = 500 in balance, 501 out of balance, with the switch's
count and amount in 48-57 so the terminal can upload again what is missing. The
answer depends only on the journal, so a trailer sent again is answered the same.
"""

from __future__ import annotations

import time

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.message import Message
from forecourt.codecs.network import function_code
from forecourt.switch.answers import local_answer
from forecourt.switch.batch_records import BatchResult, CloseBatch, totals_field48, trailer_of
from forecourt.switch.flows.base import Flow, FlowRules, Job

FUNCTION = "691"
IN_BALANCE, OUT_OF_BALANCE = "500", "501"  # ISO 8583:1993 reconciliation action codes


def is_batch_trailer(request: Message) -> bool:
    return function_code(request) == FUNCTION


async def close_batch(job: Job) -> Message:
    request, services = job.request, job.services
    family = job.ctx.dialect.family
    trailer = trailer_of(request)
    if trailer is None:
        services.metrics.rejections.labels(reason="batch_trailer_incomplete").inc()
        job.log.warning("batch_trailer_incomplete")
        return local_answer(request, family, Outcome.FORMAT_ERROR)
    batch, totals = trailer
    op = CloseBatch(request.fields["41"], batch, totals.count, totals.amount, time.time())
    (result,) = await services.journal.write(op)
    assert isinstance(result, BatchResult)
    services.metrics.batch_trailers.labels(
        result="in_balance" if result.in_balance else "out_of_balance"
    ).inc()
    services.metrics.batch_advices.observe(result.switch.count)
    job.log.info(
        "batch_trailer",
        batch=batch,
        in_balance=result.in_balance,
        count=result.switch.count,
        trailers=result.trailers,
    )
    answer = local_answer(request, family, Outcome.APPROVED)
    return answer.with_fields(
        {
            39: IN_BALANCE if result.in_balance else OUT_OF_BALANCE,
            48: totals_field48(batch, result.switch),
        }
    )


# settles what already happened: taken after a sign-off too
FLOW = Flow(FlowRules("batch_trailer", needs_signed_on=False, journalled=False), close_batch)
