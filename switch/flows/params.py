"""Parameter download (1304 / 1314, function code 305 "inquiry"): what changed since
the terminal's version, in chunks.

The request carries the version the terminal holds (48-20), the chunk it wants
(48-21, `nnnmmm`, n from 001) and, after the first chunk, the version its
download brings it to (48-22, the first answer's 48-20). The answer (action code
300, "action completed successfully") carries that version (48-20), chunk n of m
(48-21), the status (48-23: N no change, D delta, F full set, R restarted) and the
records in field 72. It is MAC'd like any answer to a terminal whose group
requires MACs: the MAC is what protects the parameters' integrity. A malformed
request is answered 904 and counted; the connection stays open. The switch answers
from the journal's database and never goes upstream. docs/terminal-interfaces.md.
"""

from __future__ import annotations

import structlog
from forecourt.codecs.action_codes import Outcome
from forecourt.codecs.errors import CodecError
from forecourt.codecs.field48 import decode_field48, encode_field48
from forecourt.codecs.message import Message
from forecourt.codecs.network import function_code
from forecourt.switch.answers import local_answer
from forecourt.switch.flows.base import Flow, FlowRules, Job
from forecourt.switch.params.catalogue import ChunkOutOfRange, ParamsCatalogue
from forecourt.switch.repeated_warnings import RepeatedWarnings

__all__ = ["FLOW", "FUNCTION_INQUIRY", "asks_for_params"]

FUNCTION_INQUIRY = "305"  # ISO 8583:1993 file action function code: inquiry
COMPLETED = "300"  # ISO 8583:1993 file action action code: action completed successfully
VERSION, CHUNK, TARGET, STATUS = 20, 21, 22, 23  # field 48 sub-elements

# a signed-on terminal can repeat a malformed request at will: one line per interval
_warnings = RepeatedWarnings(structlog.get_logger("forecourt.params"))


class _Malformed(Exception):
    pass


def asks_for_params(request: Message) -> bool:
    """The flow table's test: a 1993 file action asking for an inquiry (305)."""
    return function_code(request) == FUNCTION_INQUIRY


def _parse(request: Message) -> tuple[int, int, int | None]:
    raw = request.fields.get("48")
    if raw is None:
        raise _Malformed("no field 48: 48-20 (the version held) is required")
    try:
        elements = decode_field48(raw)
    except CodecError as exc:
        raise _Malformed(str(exc)) from None
    held = elements.get(VERSION)
    if not isinstance(held, str):
        raise _Malformed("48-20 (the version held) is required")
    chunk_text = elements.get(CHUNK, "001000")
    assert isinstance(chunk_text, str)
    chunk = int(chunk_text[:3])
    if chunk == 0:
        raise _Malformed("48-21: chunks count from 001")
    target = elements.get(TARGET)
    if chunk > 1 and target is None:
        raise _Malformed("48-22 (the version being downloaded) is required after chunk 1")
    return int(held), chunk, int(target) if isinstance(target, str) else None


async def download(job: Job) -> Message:
    request = job.request
    family = job.ctx.dialect.family
    metrics = job.services.metrics
    try:
        held, chunk, target = _parse(request)
        catalogue: ParamsCatalogue = job.services.settings.params
        got = await catalogue.download(job.services.journal, held, chunk, target)
    except (_Malformed, ChunkOutOfRange) as exc:
        metrics.malformed.labels(side="terminal", reason="params_request").inc()
        _warnings.warn(
            "params_request_malformed",
            terminal_id=request.fields.get("41"),
            stan=request.fields.get("11"),
            reason=str(exc),
        )
        return local_answer(request, family, Outcome.FORMAT_ERROR)
    metrics.params_downloads.labels(status=got.status).inc()
    job.log.info(
        "params_download",
        held=held,
        version=got.version,
        chunk=got.chunk,
        chunks=got.chunks,
        status=got.status,
    )
    field48 = encode_field48(
        {
            VERSION: f"{got.version:08d}",
            CHUNK: f"{got.chunk:03d}{got.chunks:03d}",
            STATUS: got.status,
        }
    )
    fields: dict[int, str | None] = {39: COMPLETED, 48: field48}
    if got.data:
        fields[72] = got.data
    return local_answer(request, family, Outcome.APPROVED).with_fields(fields)


FLOW = Flow(
    FlowRules(
        "params_download",
        needs_signed_on=True,
        journalled=False,  # answered from the parameter tables; no transaction row
    ),
    download,
)
