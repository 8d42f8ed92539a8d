"""Request dependencies: settings, the database session, the logged-in user, CSRF checks.

Everything is read from ``request.app.state``, which :func:`vmgrade.web.app.create_app`
fills in (``settings``, ``sessions``, ``worker``, ``templates``), so the routes are plain
module-level functions and one process may hold several apps.

Access rules: anonymous page requests raise :class:`LoginRequired` (answered with a
redirect to /login), API calls get 401. CSRF: a random per-session token; every POST
form carries it as ``csrf_token``, every state-changing API call as ``X-CSRF-Token``.
"""

import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Form, Header, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..store.blobs import Blobs
from ..store.team import User
from .accounts import revoke_sessions
from .jobs import Workers
from .limits import Limits

BUSY_RETRY_AFTER_S = 5  # what a 503 ``busy`` tells the client to wait


@dataclass(frozen=True)
class Settings:
    """What the routes need to know of :func:`vmgrade.web.app.create_app`'s arguments.

    Attributes
    ----------
    data_dir : Path
        Uploads, reports and (by default) the database.
    max_upload_bytes : int
        Largest upload accepted, bytes.
    max_duration_s : float
        Longest recording accepted, seconds.
    https_only : bool
        Whether the session cookie is marked Secure.
    max_queued_per_user : int
        Most recordings one user may have waiting to be graded (queued or running).
    limits : Limits
        Uploads in flight, database slots, timeouts.
    blobs : LocalBlobs or DatabaseBlobs, optional
        Where uploads and reports live (default: files under ``data_dir``).
    """

    data_dir: Path
    max_upload_bytes: int
    max_duration_s: float
    https_only: bool
    max_queued_per_user: int = 10
    limits: Limits = Limits()
    blobs: Blobs | None = None

    @property
    def files(self) -> Blobs:
        """The file store (``blobs``, else files under the data dir)."""
        from ..store.blobs import LocalBlobs

        return self.blobs if self.blobs is not None else LocalBlobs(self.data_dir)


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to /login."""


class WebError(HTTPException):
    """An HTTP error with its own code: answered ``{"detail", "code"}`` under /api/, a page elsewhere."""

    def __init__(self, status_code: int, detail: str, *, code: str, headers: dict[str, str] | None = None):
        super().__init__(status_code, detail, headers=headers)
        self.code = code


def busy() -> WebError:
    """503 ``busy``: every database slot stayed taken for ``Limits.db_wait_s``."""
    return WebError(503, "the server is busy: retry in a few seconds", code="busy",
                    headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})


# ---------------------------------------------------------------- app state

def get_settings(request: Request) -> Settings:
    """The app's :class:`Settings`."""
    return request.app.state.settings


def get_worker(request: Request) -> Workers:
    """The app's grading workers (routes wake them after queueing a job; none on a web-only node)."""
    return request.app.state.workers


def db(request: Request) -> Iterator[Session]:
    """A database session for the request, closed after the response.

    Each takes one of the app's database slots (``Limits.db_slots``) for its whole request, so
    requests never wait on the connection pool (30 s, then a 500); with every slot taken for
    ``Limits.db_wait_s`` the request is answered 503 ``busy``.
    """
    state = request.app.state
    if not state.db_slots.acquire(state.settings.limits.db_wait_s):
        raise busy()
    try:
        with state.sessions() as s:
            yield s
    finally:
        state.db_slots.release()


def login_db(request: Request) -> Iterator[Session]:
    """A database session for a login, outside the slots: :func:`vmgrade.web.accounts.authenticate`
    touches the database only once it holds one of its two argon2 slots, so logins waiting
    for one hold no connection, and a flood of them cannot take every database slot."""
    with request.app.state.sessions() as s:
        yield s


def session_still_valid(state, uid: int, session_version) -> bool | None:
    """Whether user ``uid`` is active with this session version (the upload gate's check).

    Returns None when the database is busy (no slot within ``Limits.db_wait_s``, or an error).
    """
    if not state.db_slots.acquire(state.settings.limits.db_wait_s):
        return None
    try:
        with state.sessions() as s:
            row = s.execute(select(User.active, User.session_version).where(User.id == uid)).first()
    except SQLAlchemyError:
        return None
    finally:
        state.db_slots.release()
    return row is not None and bool(row.active) and row.session_version == session_version


AppSettings = Annotated[Settings, Depends(get_settings)]
GradingWorker = Annotated[Workers, Depends(get_worker)]
DB = Annotated[Session, Depends(db)]
LoginDB = Annotated[Session, Depends(login_db)]


# ---------------------------------------------------------------- users

def session_user(request: Request, s: DB) -> User | None:
    """The logged-in, active user, or None; also kept as ``request.state.user`` for templates."""
    uid = request.session.get("uid")
    user = s.get(User, uid) if isinstance(uid, int) else None
    # A cookie from before the last logout, password change or disabling carries an old version.
    if user is None or not user.active or request.session.get("sv") != user.session_version:
        return None
    request.state.user = user
    return user


def page_user(user: Annotated[User | None, Depends(session_user)]) -> User:
    """The logged-in user of a page; anonymous visitors are sent to /login."""
    if user is None:
        raise LoginRequired()
    return user


def api_user(user: Annotated[User | None, Depends(session_user)]) -> User:
    """The logged-in user of an API call; anonymous calls get 401."""
    if user is None:
        raise HTTPException(401, "not logged in: POST /api/login first",
                            headers={"WWW-Authenticate": 'Cookie realm="vmgrade"'})
    return user


PageUser = Annotated[User, Depends(page_user)]
ApiUser = Annotated[User, Depends(api_user)]


# ---------------------------------------------------------------- CSRF and the session

def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(request: Request, token: str | None) -> bool:
    """Whether ``token`` is the session's CSRF token (compared in constant time)."""
    return csrf_matches(request.session, token)


def csrf_matches(session: dict, token: str | None) -> bool:
    """Whether ``token`` is the CSRF token of the session data ``session`` (constant time)."""
    expected = session.get("csrf")
    return bool(expected and token) and hmac.compare_digest(str(expected), str(token))


def api_csrf(request: Request, x_csrf_token: Annotated[str | None, Header(
        description="the session's CSRF token, from GET /api/csrf or POST /api/login")] = None) -> None:
    """Refuse (403) a state-changing API call without the session's ``X-CSRF-Token`` header."""
    if not csrf_ok(request, x_csrf_token):
        raise HTTPException(403, "missing or wrong X-CSRF-Token header (GET /api/csrf)")


def check_form_csrf(request: Request, token: str | None) -> None:
    """Refuse (403) a form post whose ``csrf_token`` field is not the session's."""
    if not csrf_ok(request, token):
        raise HTTPException(403, "form expired or forged (CSRF token mismatch): "
                                 "reload the page and retry")


def start_session(request: Request, user: User) -> str:
    """Log ``user`` in with a fresh session (and CSRF token), so no pre-login state carries over."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["sv"] = user.session_version
    return csrf_token(request)


def end_session(request: Request, s: Session) -> None:
    """Log out: end every session of the logged-in user server-side, then clear this cookie.

    A copy of the cookie taken before (another tab, device or a thief) stops working too.
    """
    user = session_user(request, s)
    if user is not None:
        revoke_sessions(s, user.id)
    request.session.clear()


def client_ip(request: Request) -> str:
    """The peer's address (the login lockout counts failures per user and address).

    uvicorn puts a proxy's ``X-Forwarded-For`` here only for the proxies named with
    ``vmgrade serve --forwarded-allow-ips``.
    """
    return request.client.host if request.client else "unknown"


# ---------------------------------------------------------------- forms and pages

def context_form(caller_name: Annotated[str, Form()] = "", company: Annotated[str, Form()] = "",
                 callback_number: Annotated[str, Form()] = "", prospect_name: Annotated[str, Form()] = "",
                 prospect_company: Annotated[str, Form()] = "",
                 channel: Annotated[str, Form()] = "",
                 whole_file: Annotated[str, Form()] = "") -> dict[str, str]:
    """The optional call-context form fields, ``channel`` (the rep's side of a two-channel file) and
    ``whole_file`` (grade the whole file: no greeting, beep or live-call detection)."""
    return dict(caller_name=caller_name, company=company, callback_number=callback_number,
                prospect_name=prospect_name, prospect_company=prospect_company, channel=channel,
                whole_file=whole_file)


def render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    """Render template ``name`` with the user (unless given) and the CSRF token for its forms."""
    context.setdefault("user", getattr(request.state, "user", None))
    context["csrf_token"] = csrf_token(request)
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status_code)
