"""EFT registration: 1804 / 1814, function 882. A pending terminal binds its serial.

`forecourt terminals add-pending` made the terminal pending with a one-time
activation code (its argon2 hash in the journal). The terminal sends its id (41),
its serial number (48-16) and the code (48-17); the switch checks the registration
is pending, unexpired and not locked, that the serial is the one expected (when
one was given), verifies the code, and binds the serial to the terminal id in one
compare-and-set (two nodes racing with the same code: one wins). The answer is
800 with the terminal id (41) and serial (48-16).

Every refusal is the same 100 ("do not honour"): an unknown, used, expired or
locked registration and a wrong code or serial look alike to the sender, and only
the log line and `forecourt_terminal_registrations_total{result}` say which. A
wrong code or serial counts towards the terminal's lock (its `max_attempts`),
and a terminal is heard at most once per `RETRY_S` after a failure.

No key travels: the KEK comes from the key ceremony (`forecourt keys add-terminal`),
which must have registered the terminal id first (otherwise 109 / 03 before this
flow runs). So neither the request nor the answer is MAC'd: the terminal may hold
no working key yet. That is safe because nothing secret is in the answer, and a
forger gains nothing: without the code it is refused, and with a stolen code it
binds a serial number to a terminal id that still cannot sign on or MAC without
the KEK only the key ceremony put in the genuine terminal.
"""

from __future__ import annotations

import time
from typing import Any

from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.errors import CodecError
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.terminals.ops import (
    CompleteRegistration,
    CountRegistrationFailure,
    FailureCount,
)
from forecourt.switch.terminals.registration import code_matches, normalise_code

FUNCTION_CODE = "882"
RETRY_S = 2.0  # after a failure, the terminal's next attempt is refused unread this long

_PENDING = (
    "SELECT state, code_hash, expected_serial, expires_at, failures, last_failure_at "
    "FROM terminal_registrations WHERE terminal_id = ?"
)


def _credentials(request: Message) -> tuple[str, str] | None:
    """(serial, code) from 48-16 and 48-17."""
    raw = request.fields.get("48")
    if raw is None:
        return None
    try:
        elements = decode_field48(raw)
    except CodecError:
        return None
    serial, code = elements.get(16), elements.get(17)
    if not isinstance(serial, str) or not isinstance(code, str) or not serial.strip():
        return None
    return serial, normalise_code(code)


async def register(job: Job) -> Message:
    request, services = job.request, job.services
    family = job.ctx.dialect.family
    terminal_id = request.fields["41"]
    credentials = _credentials(request)
    if credentials is None:
        services.metrics.malformed.labels(side="terminal", reason="registration").inc()
        return local_answer(request, family, Outcome.FORMAT_ERROR)
    serial, code = credentials
    rows = await services.journal.view(_PENDING, (terminal_id,))
    result = await _decide(job, terminal_id, serial, code, rows[0] if rows else None)
    services.roster.metrics.registration(result)
    if result != "registered":
        job.log.warning("registration_refused", result=result, serial=serial)
        return local_answer(request, family, Outcome.DECLINED)
    services.roster.registration_changed(terminal_id, "registered")
    job.log.info("terminal_registered", serial=serial)
    answer = local_answer(request, family, Outcome.NETWORK_ACCEPTED)
    return answer.with_fields({41: terminal_id, 48: encode_field48({16: serial})})


async def _decide(
    job: Job, terminal_id: str, serial: str, code: str, row: dict[str, Any] | None
) -> str:
    """registered, or why not: no_pending, used, locked, expired, too_soon,
    wrong_serial, wrong_code, raced."""
    now = time.time()
    if row is None:
        return "no_pending"
    if row["state"] != "pending":
        return "used" if row["state"] == "registered" else "locked"
    if float(row["expires_at"]) <= now:
        return "expired"
    last = row["last_failure_at"]
    if last is not None and now - float(last) < RETRY_S:
        return "too_soon"
    journal = job.services.journal
    expected = row["expected_serial"]
    wrong = None
    if expected is not None and expected != serial:
        wrong = "wrong_serial"
    elif not await code_matches(row["code_hash"], code, job.services.roster.verifications):
        wrong = "wrong_code"
    if wrong is not None:
        (count,) = await journal.write(CountRegistrationFailure(terminal_id, time.time()))
        if isinstance(count, FailureCount) and count.locked:
            job.services.roster.registration_changed(terminal_id, "locked")
            job.log.error("registration_locked", failures=count.failures)
        return wrong
    (done,) = await journal.write(
        CompleteRegistration(terminal_id, str(row["code_hash"]), serial, time.time())
    )
    return "registered" if done else "raced"


FLOW = Flow(
    FlowRules(
        "registration",
        needs_mac=False,
        needs_signed_on=False,
        journalled=False,
        mac_answer=False,
        before_registration=True,
    ),
    register,
)
