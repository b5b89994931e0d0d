"""The console's read pages (GET): dashboard, terminals, links, SAF, shifts, keys,
transactions and the console's audit. Nothing here writes."""

from __future__ import annotations

import calendar
import time
from datetime import datetime

import attrs
import trio
from forecourt.console.app import render, require, state_of
from forecourt.console.data import ONLINE_S, TxnQuery
from forecourt.console.links import LinksReport, as_text, read_links, with_configured
from forecourt.console.operators import Role
from forecourt.console.pan_search import BadPanQuery, pan_pattern
from forecourt.keys.model import KeyInfo, KeyState, OwnerKind
from forecourt.switch.journal import PARKED_HORIZON_S, SafState
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_MAX_ROWS = 500
SEARCH_LOOKBACK_S = 86400.0


@attrs.frozen
class TerminalView:
    terminal_id: str
    group: str
    online: bool
    last_seen: float | None
    keys: dict[str, str]  # TAK/TPK/TDK -> "v3 (KCV 1A2B3C)" of the active key
    mac_failures: int
    locked: bool
    signed_on: bool | None  # None: the journal has never seen a sign-on or sign-off
    open_shift: str | None


async def dashboard(request: Request) -> Response:
    require(request)
    return render(request, "dashboard.html", page="dashboard")


async def dashboard_data(request: Request) -> Response:
    require(request)
    board = await state_of(request).data.dashboard()
    return JSONResponse(board.as_json())


def _active_keys(keys: list[KeyInfo]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for k in keys:
        if k.state is KeyState.ACTIVE:
            out.setdefault(k.owner, {})[k.key_type.value] = f"v{k.version} (KCV {k.kcv})"
    return out


async def terminals(request: Request) -> Response:
    require(request)
    st = state_of(request)
    owners = await trio.to_thread.run_sync(st.catalogue.owners)
    keys = _active_keys(await trio.to_thread.run_sync(st.catalogue.keys))
    guards = {g.terminal_id: g for g in await st.data.journal.guards_since(0)}
    seen = await st.data.last_seen()
    shifts = dict(await st.data.journal.open_shifts())
    now = st.clock()
    ids = sorted({o.name for o in owners if o.kind is OwnerKind.TERMINAL} | set(guards) | set(seen))
    views = []
    for tid in ids:
        g = guards.get(tid)
        signed_on = None if g is None else not g.signed_off
        last = seen.get(tid)
        views.append(
            TerminalView(
                tid,
                st.terminal_groups.get(tid, "—"),
                bool(last is not None and now - last <= ONLINE_S and signed_on is not False),
                last,
                {t: v for t, v in keys.get(tid, {}).items() if t in ("TAK", "TPK", "TDK")},
                g.mac_failures if g else 0,
                bool(g and g.locked),
                signed_on,
                shifts.get(tid),
            )
        )
    return render(request, "terminals.html", page="terminals", terminals=views)


async def _links_report(request: Request) -> LinksReport | None:
    st = state_of(request)
    if st.metrics_at is None:
        return None
    return with_configured(await read_links(*st.metrics_at), st.link_kinds)


async def links(request: Request) -> Response:
    require(request)
    report = await _links_report(request)
    return render(request, "links.html", page="links", report=report, as_text=as_text)


async def links_table(request: Request) -> Response:
    require(request)
    report = await _links_report(request)
    return render(request, "_links_table.html", report=report, as_text=as_text)


async def saf(request: Request) -> Response:
    require(request)
    journal = state_of(request).data.journal
    stats = await journal.saf_stats()
    flagged = await journal.saf_entries(SafState.FLAGGED.value, _MAX_ROWS)
    pending = await journal.saf_entries(SafState.PENDING.value, _MAX_ROWS)
    in_flight = await journal.saf_entries(SafState.IN_FLIGHT.value, _MAX_ROWS)
    # parked reversals (held for approved transactions, due only if something goes
    # wrong) are the switch's safety net, cancelled by it: listed apart, no actions
    horizon = time.time() + PARKED_HORIZON_S
    return render(
        request,
        "saf.html",
        page="saf",
        stats=stats,
        flagged=flagged,
        pending=[i for i in pending if i.next_attempt_at <= horizon],
        parked=[i for i in pending if i.next_attempt_at > horizon],
        in_flight=in_flight,
    )


async def shifts(request: Request) -> Response:
    require(request)
    data = state_of(request).data
    lines = await data.shifts()
    totals = {(s.terminal_id, s.shift_id): await data.journal.totals(s.terminal_id, s.shift_id)
              for s in lines}  # fmt: skip
    days: dict[str, list[object]] = {}
    for s in lines:
        days.setdefault(s.day, []).append(s)
    return render(request, "shifts.html", page="shifts", days=days, totals=totals)


async def keys(request: Request) -> Response:
    session = require(request)
    st = state_of(request)
    infos = await trio.to_thread.run_sync(st.catalogue.keys)
    kcv = await trio.to_thread.run_sync(st.catalogue.lmk_kcv)
    trail = None
    if session.role is not None and session.role.may_audit:
        trail = list(reversed(await trio.to_thread.run_sync(st.catalogue.audit)))[:_MAX_ROWS]
    return render(request, "keys.html", page="keys", keys=infos, lmk_kcv=kcv, trail=trail)


def _time_arg(text: str, name: str) -> float | None:
    """A datetime-local value (UTC) as epoch seconds; 400 naming the field if bad."""
    if not text:
        return None
    try:
        return float(calendar.timegm(datetime.fromisoformat(text).timetuple()))
    except ValueError:
        raise HTTPException(400, f"{name}: use YYYY-MM-DDTHH:MM (UTC)") from None


async def transactions(request: Request) -> Response:
    require(request)
    args = request.query_params
    terminal = args.get("terminal", "").strip()[:16]
    rrn = args.get("rrn", "").strip()[:12]
    pan_text = args.get("pan", "")[:32]
    since, until = _time_arg(args.get("since", ""), "from"), _time_arg(args.get("until", ""), "to")
    pan_like, pan_shown, error = None, "", None
    if pan_text.strip():
        try:
            pan_like, pan_shown = pan_pattern(pan_text)
        except BadPanQuery as exc:
            error = str(exc)
    rows = []
    lookback = None
    if (pan_like or rrn) and not terminal and since is None:
        # neither is indexed: without a terminal, look back a day on the received_at
        # index rather than read the whole journal (bench/console_reads.py)
        since = lookback = time.time() - SEARCH_LOOKBACK_S
    if error is None:
        q = TxnQuery(terminal or None, pan_like, rrn or None, since, until, limit=200)
        rows = await state_of(request).data.transactions(q)
    form = {
        "terminal": terminal,
        "pan": pan_shown,
        "rrn": rrn,
        "since": args.get("since", "")[:16],
        "until": args.get("until", "")[:16],
    }
    return render(
        request,
        "transactions.html",
        page="transactions",
        rows=rows,
        form=form,
        error=error,
        lookback=lookback,
    )


async def transaction(request: Request) -> Response:
    require(request)
    journal = state_of(request).data.journal
    txn_id = str(request.path_params["txn_id"])[:26]
    row = await journal.get(txn_id)
    if row is None:
        raise HTTPException(404, f"no transaction {txn_id}")
    events = await journal.events(txn_id)
    saf_items = await journal.saf_entries_of([txn_id])
    originals = await journal.get(row.original_txn_id) if row.original_txn_id else None
    return render(
        request,
        "transaction.html",
        page="transactions",
        row=row,
        events=events,
        saf_items=saf_items,
        original=originals,
    )


async def audit(request: Request) -> Response:
    require(request, lambda role: role is Role.SECURITY_OFFICER)
    lines = await state_of(request).data.console_audit()
    return render(request, "audit.html", page="audit", lines=lines)


PAGE_ROUTES = [
    Route("/", dashboard),
    Route("/api/dashboard", dashboard_data),
    Route("/terminals", terminals),
    Route("/links", links),
    Route("/links/table", links_table),
    Route("/saf", saf),
    Route("/shifts", shifts),
    Route("/keys", keys),
    Route("/transactions", transactions),
    Route("/transactions/{txn_id}", transaction),
    Route("/audit", audit),
]
