"""The console's ASGI application: state, log-in checks, templates and routes.

Every page needs a logged-in operator; every POST needs the session's CSRF token
(a hidden form field) and the role the action asks for, checked here on the
server whatever the page showed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import jinja2
from forecourt.console.data import ConsoleData
from forecourt.console.headers import SecurityHeaders
from forecourt.console.operators import Role
from forecourt.console.sessions import Session, SessionBook, csrf_matches
from forecourt.console.throttle import LoginThrottle
from forecourt.keys.catalogue import KeyCatalogue
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
COOKIE = "forecourt_console"
TLS_COOKIE = "__Host-forecourt_console"  # the prefix: Secure, Path=/, no Domain


@attrs.define
class ConsoleState:
    data: ConsoleData
    catalogue: KeyCatalogue
    sessions: SessionBook
    metrics_at: tuple[str, int] | None  # the switch's /healthz and /metrics, if any
    terminal_groups: dict[str, str]  # terminal id -> group named in the config
    link_kinds: dict[str, str] = attrs.field(factory=dict)  # configured link -> its kind
    tls: bool = False
    throttle: LoginThrottle = attrs.field(factory=LoginThrottle)
    clock: Callable[[], float] = time.time

    @property
    def cookie(self) -> str:
        return TLS_COOKIE if self.tls else COOKIE


class LoginNeeded(Exception):
    pass


def state_of(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def session_of(request: Request) -> Session | None:
    st = state_of(request)
    return st.sessions.find(request.cookies.get(st.cookie), st.clock())


def require(request: Request, check: Callable[[Role], bool] = lambda _: True) -> Session:
    """The logged-in operator's session, with a role ``check`` allows; else 403."""
    session = session_of(request)
    if session is None or session.role is None:
        raise LoginNeeded
    if not check(session.role):
        raise HTTPException(403, "your role may not do this")
    return session


async def posted(request: Request, session: Session) -> dict[str, str]:
    """The form of a POST, refused (403) without the session's CSRF token."""
    form = await request.form()
    if not csrf_matches(session, form.get("csrf")):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page")
    return {k: v for k, v in form.items() if isinstance(v, str)}


def set_session_cookie(response: Response, state: ConsoleState, session: Session) -> None:
    response.set_cookie(
        state.cookie,
        state.sessions.cookie_value(session),
        httponly=True,
        samesite="strict",
        secure=state.tls,
        path="/",
    )


def _utc(at: float | None) -> str:
    if at is None:
        return "—"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["utc"] = _utc
    return Jinja2Templates(env=env)


TEMPLATES = _templates()


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    session = session_of(request)
    context.setdefault("session", session)
    context.setdefault("role", session.role if session else None)
    context.setdefault("csrf", session.csrf if session else "")
    context.setdefault("Role", Role)
    context.setdefault("page", "")
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)


async def _login_needed(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "log in"}, status_code=401)
    return RedirectResponse("/login", status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    return render(request, "error.html", exc.status_code, status=exc.status_code, detail=exc.detail)


Handler = Callable[[Request], Awaitable[Response]]


def build_app(state: ConsoleState) -> Starlette:
    from forecourt.console.actions import ACTION_ROUTES
    from forecourt.console.pages import PAGE_ROUTES

    routes: list[BaseRoute] = [
        *PAGE_ROUTES,
        *ACTION_ROUTES,
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={LoginNeeded: _login_needed, HTTPException: _http_error},
    )
    app.state.console = state
    return app
