"""The console's actions (POST): log in, log out, retry or abandon a SAF item.

Each is checked for the CSRF token and the role, and written together with its
audit line in ONE journal write, so an action is never done without its record.
A refused log-in is audited too (under the name tried, when it is a valid name).
"""

from __future__ import annotations

import trio
from forecourt.console.app import (
    posted,
    render,
    require,
    session_of,
    set_session_cookie,
    state_of,
)
from forecourt.console.operators import BadOperator, check_name, password_matches
from forecourt.switch.journal import JournalError, PanRefused
from forecourt.switch.journal.model import check_pan_free
from forecourt.switch.journal.writes import AbandonSaf, AuditConsoleAction, RetryFlaggedSaf
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route


async def login_form(request: Request) -> Response:
    st = state_of(request)
    session = session_of(request)
    if session is not None and session.role is not None:
        return RedirectResponse("/", status_code=303)
    if session is None:
        session = st.sessions.open(st.clock())
    response = render(request, "login.html", session=session, csrf=session.csrf, role=None)
    set_session_cookie(response, st, session)
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login(request: Request) -> Response:
    st = state_of(request)
    session = session_of(request)
    if session is None:
        raise HTTPException(403, "no login session: open the login page again")
    form = await posted(request, session)
    name, password = form.get("name", "")[:64], form.get("password", "")[:1024]
    now = st.clock()
    try:
        check_name(name)
        who = name
    except BadOperator:
        who = "(invalid name)"
    keys = (f"name:{who}", f"addr:{_client(request)}")
    wait = st.throttle.retry_after(keys, now)
    if wait is not None:
        await st.data.journal.write(
            AuditConsoleAction(now, who, "login_refused", detail="rate limited")
        )
        response = render(
            request, "login.html", 429, error=f"too many failed log-ins: wait {int(wait) + 1} s"
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    operator = await st.data.operator(who) if who != "(invalid name)" else None
    matched = await trio.to_thread.run_sync(password_matches, operator, password)
    if operator is None or not matched:
        st.throttle.failed(keys, now)
        await st.data.journal.write(
            AuditConsoleAction(now, who, "login_failed", detail=f"from {_client(request)}")
        )
        return render(request, "login.html", 401, error="wrong name or password")
    st.throttle.succeeded(f"name:{who}")
    st.sessions.close(session)  # a new token after log-in: no session fixation
    fresh = st.sessions.open(now, operator.name, operator.role)
    await st.data.journal.write(
        AuditConsoleAction(now, operator.name, "login", detail=f"from {_client(request)}")
    )
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, st, fresh)
    return response


async def logout(request: Request) -> Response:
    session = require(request)
    await posted(request, session)
    st = state_of(request)
    st.sessions.close(session)
    assert session.operator is not None
    await st.data.journal.write(AuditConsoleAction(st.clock(), session.operator, "logout"))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(st.cookie, path="/", secure=st.tls, httponly=True, samesite="strict")
    return response


def _item_id(request: Request) -> int:
    try:
        return int(request.path_params["item_id"])
    except ValueError:
        raise HTTPException(404, "no such SAF item") from None


async def saf_retry(request: Request) -> Response:
    session = require(request, lambda role: role.may_act_on_saf)
    await posted(request, session)
    st, item = state_of(request), _item_id(request)
    assert session.operator is not None
    now = st.clock()
    try:
        await st.data.journal.write(
            RetryFlaggedSaf(item, session.operator, now),
            AuditConsoleAction(now, session.operator, "saf_retry", f"saf:{item}"),
        )
    except JournalError as exc:
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse("/saf", status_code=303)


async def saf_abandon(request: Request) -> Response:
    session = require(request, lambda role: role.may_act_on_saf)
    form = await posted(request, session)
    st, item = state_of(request), _item_id(request)
    assert session.operator is not None
    reason = form.get("reason", "").strip()[:200]
    if not reason:
        raise HTTPException(400, "abandon: give a reason (it goes in the audit)")
    try:
        check_pan_free("reason", reason)
    except PanRefused:
        raise HTTPException(400, "abandon: the reason must not hold a card number") from None
    now = st.clock()
    try:
        await st.data.journal.write(
            AbandonSaf(item, session.operator, now),
            AuditConsoleAction(now, session.operator, "saf_abandon", f"saf:{item}", reason),
        )
    except JournalError as exc:
        raise HTTPException(409, str(exc)) from None
    return RedirectResponse("/saf", status_code=303)


ACTION_ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/saf/{item_id}/retry", saf_retry, methods=["POST"]),
    Route("/saf/{item_id}/abandon", saf_abandon, methods=["POST"]),
]
