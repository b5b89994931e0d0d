"""Status query (ifsf 1604, function code 690): the outcome of one of the terminal's own
transactions, for a terminal that lost an answer.

Answered from the journal alone and never sent upstream. It is a message of its own:
not journalled as a transaction (no duplicate detection, so never taken for a
retransmission of the query or of the original), it creates no transaction and never
changes the original. The original is named by field 56 (its MTI, STAN and local
date-time, as a reversal names it) or by its RRN (field 37). The answer: 39 = 600 when
the original is found, 601 when it cannot be traced (unknown, or another terminal's);
48-56 = the original's state (A approved, D declined, R reversed, P in progress,
U unknown) and its action code; for an approval, 4 the approved amount, 38 the
approval code (docs/terminal-interfaces.md).
"""

from __future__ import annotations

import time

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.errors import DecodeError
from forecourt.codecs.field48 import encode_field48
from forecourt.codecs.message import Message
from forecourt.codecs.network import function_code
from forecourt.codecs.original import OriginalData
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.status_records import (
    UNKNOWN,
    AnswerStatusQuery,
    OriginalOutcome,
    RecordStatusQuery,
    find_original,
)

FUNCTION = "690"
QUERY_ANSWERED, NOT_TRACED = "600", "601"  # ISO 8583:1993 administrative action codes
ORIGINAL_OUTCOME = 56  # forecourt's 48-56


def is_status_query(request: Message) -> bool:
    return function_code(request) == FUNCTION


def asked(request: Message, terminal_id: str, now: float) -> AnswerStatusQuery | None:
    """What the query names (field 56 first, else field 37); None when it names nothing."""
    stan = request.fields["11"]
    value = request.fields.get("56")
    if value is not None:
        try:
            original = OriginalData.decode(value)
        except DecodeError:
            return None
        return AnswerStatusQuery(
            terminal_id,
            stan,
            now,
            original_class=original.mti[1],
            original_stan=original.stan,
            original_date=original.local_datetime[:6],
        )
    rrn = request.fields.get("37")
    if rrn:
        return AnswerStatusQuery(terminal_id, stan, now, rrn=rrn)
    return None


def status_answer(request: Message, job: Job, outcome: OriginalOutcome) -> Message:
    answer = local_answer(request, job.ctx.dialect.family, Outcome.APPROVED)
    code = outcome.action_code if outcome.action_code is not None else "   "
    updates: dict[int, str | None] = {
        39: NOT_TRACED if outcome.state == UNKNOWN else QUERY_ANSWERED,
        48: encode_field48({ORIGINAL_OUTCOME: outcome.state + code[:3].ljust(3)}),
        4: None,
        38: None,
    }
    if outcome.approved_amount is not None:
        updates[4] = f"{outcome.approved_amount:012d}"
        if outcome.currency:
            updates[49] = outcome.currency
    if outcome.auth_code:
        updates[38] = outcome.auth_code
    if outcome.rrn:
        updates[37] = outcome.rrn
    return answer.with_fields(updates)


async def answer_status(job: Job) -> Message:
    request, services = job.request, job.services
    query = asked(request, request.fields["41"], time.time())
    if query is None:
        services.metrics.rejections.labels(reason="status_query_names_nothing").inc()
        job.log.warning("status_query_names_nothing")
        return local_answer(request, job.ctx.dialect.family, Outcome.FORMAT_ERROR)
    outcome = await find_original(services.journal, query)
    await services.journal.write(RecordStatusQuery(query, outcome))
    services.metrics.status_queries.labels(answered=outcome.state).inc()
    job.log.info("status_query", answered=outcome.state, original=outcome.txn_id)
    return status_answer(request, job, outcome)


# moves no money: taken after a sign-off too; MAC'd both ways like any request
FLOW = Flow(FlowRules("status_query", needs_signed_on=False, journalled=False), answer_status)
