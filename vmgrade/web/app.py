"""The FastAPI app: server-rendered pages, a JSON API under /api, grading workers.

This module only assembles the app (settings, middleware, routers, static files, the
workers' lifespan); the routes are in :mod:`vmgrade.web.routes`, their dependencies in
:mod:`vmgrade.web.deps`. A node grades with ``workers`` in-process worker threads (each
grading in a child process), or none when ``vmgrade worker`` processes do it
(:mod:`vmgrade.web.jobs`).

Security model
--------------
* Passwords: argon2id (argon2-cffi). Sessions: Starlette's signed cookie
  (itsdangerous), HttpOnly, SameSite=Lax, Secure when ``https_only``, carrying the
  user's session version: logout, a password change or disabling bumps it, which
  ends every session of that user server-side.
* CSRF: a random per-session token; every POST form carries it as
  ``csrf_token`` and every state-changing API call as the ``X-CSRF-Token`` header.
* Failed logins: each attempt is counted atomically before its password is checked,
  locked per (username, client address) after ``accounts.MAX_FAILED_LOGINS``; after
  ``accounts.MAX_FAILED_LOGINS_PER_ACCOUNT`` per username only addresses without a failure
  may try. Known usernames are counted in the database, unknown ones in bounded memory; at
  most two argon2 checks run at once (memory).
* Bodies: uploads are capped at their limit, every other request at 64 KiB (413); an
  upload's sender must be logged in before a byte of it is read; stalled bodies time out (408).
* Fairness: per-user limits on uploads in flight, database slots answered 503 ``busy``
  rather than a 30 s wait (:mod:`vmgrade.web.limits`).
* One server per data dir (a lock file); data-dir folders 0700, secret files 0600.
* Several nodes on one shared database (PostgreSQL) must share one session secret
  (``$VMGRADE_SECRET_KEY`` or a file): a node refuses to start without one.
* Access: a rep sees only their own uploads, a trainer their team's; anything
  else answers 404 (not 403, so ids of others' recordings are not confirmed).
  Anonymous page requests are redirected to /login, API calls get 401.
"""


import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from .._version import __version__
from ..audio import DEFAULT_MAX_DURATION_S
from ..errors import VmgradeError
from ..fileio import is_storage_full
from ..pipeline import GradeOptions, Grader
from ..store.blobs import default_storage, open_blobs
from ..store.history import DB_FILENAME
from .accounts import LoginCounters
from .deps import LoginRequired, Settings, WebError, busy
from .jobs import Worker, Workers, reap_expired
from .limits import Limits, Slots
from .middleware import FORM_OVERHEAD_BYTES, BodySizeLimit, RequestGate, security_headers
from .routes import api, pages, team
from .storage import (
    MAX_UPLOAD_BYTES,
    clean_tmp,
    ensure_layout,
    lock_data_dir,
    storage_full_message,
    unlock_data_dir,
)

log = logging.getLogger("vmgrade.web")

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "vmgrade_session"
SESSION_MAX_AGE_S = 12 * 3600
MAX_QUEUED_PER_USER = 10  # recordings one user may have waiting; the worker takes users in turn
# Requests that may wait for a database slot at once; more are answered 503 ``busy`` at once.
DB_MAX_WAITING = 64
SECRET_ENV = "VMGRADE_SECRET_KEY"
SECRET_FILE_ENV = "VMGRADE_SECRET_KEY_FILE"


class SecretRequired(VmgradeError):
    """A node on a shared database without the one session secret every node must share."""

    code = "secret_required"


def create_app(
    data_dir: str | os.PathLike | None = None,
    db_url: str | None = None,
    *,
    grade_options: GradeOptions | None = None,
    grader: Grader | None = None,
    start_worker: bool = True,
    workers: int = 1,
    storage: str | None = None,
    secret_key_file: str | os.PathLike | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    secret_key: str | None = None,
    https_only: bool = False,
    max_queued_per_user: int = MAX_QUEUED_PER_USER,
    limits: Limits | None = None,
) -> FastAPI:
    """Build the web app.

    Parameters
    ----------
    data_dir : path, optional
        Where uploads, reports and (by default) the database live; default
        :func:`vmgrade.store.history.data_dir`.
    db_url : str, optional
        SQLAlchemy URL of the history database; default ``$VMGRADE_DB_URL``, else
        ``sqlite:///<data_dir>/history.sqlite3``.
    grade_options : GradeOptions, optional
        Model, engine and rubric for the worker's Grader.
    grader : Grader, optional
        An already-loaded Grader to use instead (tests share one).
    start_worker : bool
        Run the grading workers (False: jobs stay queued here; for tests of the queue).
    workers : int
        Grading workers in this node, each a thread grading in a child process of its own
        (default 1); 0: a web node only, graded by ``vmgrade worker`` processes.
    storage : str, optional
        Where uploads and reports live: ``local`` (under ``data_dir``) or ``database`` (every node
        reads them); default ``database`` on PostgreSQL, ``local`` on SQLite.
    secret_key_file : path, optional
        A file holding the session secret (default ``$VMGRADE_SECRET_KEY_FILE``).
    max_upload_bytes : int
        Largest upload accepted, bytes (default 20 MiB).
    max_duration_s : float
        Longest recording accepted, seconds (default :data:`vmgrade.audio.DEFAULT_MAX_DURATION_S`).
    secret_key : str, optional
        Signs session cookies; default ``$VMGRADE_SECRET_KEY``, else ``secret_key_file``'s, else
        (SQLite only) a random key kept in ``<data_dir>/secret_key``.
    https_only : bool
        Mark the session cookie Secure (set this behind HTTPS).
    max_queued_per_user : int
        Most recordings one user may have waiting to be graded (default 10); more answer 429
        ``queue_full``. The worker takes reps in turn, so nobody waits behind one rep's pile.
    limits : Limits, optional
        Uploads in flight per user, database slots, body and job timeouts
        (:class:`vmgrade.web.limits.Limits`; docs/web.md, "Limits").

    Raises
    ------
    SecretRequired
        On a shared database (not SQLite) without a session secret: nodes with keys of their
        own would not know each other's logins.
    """
    from ..store.history import data_dir as default_data_dir
    from ..store.history import open_store

    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    own_db = f"sqlite:///{data_dir / DB_FILENAME}"
    db_url = db_url or os.environ.get("VMGRADE_DB_URL") or own_db
    # The database holds password hashes and transcripts: created 0600 before SQLite opens it
    # (its -wal and -shm files take the same mode).
    ensure_layout(data_dir, private_files=(DB_FILENAME,) if db_url == own_db else ())
    shared = not db_url.startswith("sqlite")
    secret = _secret_key(data_dir, secret_key, secret_key_file, shared=shared)
    store = open_store(db_url)
    # The history store's engine: on SQLite it sets WAL and a 30 s busy timeout, and the
    # driver opens a transaction only at the first write, so reads never hold the write lock.
    sessions = sessionmaker(store.engine, expire_on_commit=False)
    options = grade_options or GradeOptions()
    limits = limits or Limits()
    blobs = open_blobs(storage or default_storage(db_url), data_dir=data_dir, engine=store.engine)
    # an in-process grader is one model: one worker uses it
    count = (1 if grader is not None else max(0, workers)) if start_worker else 0
    pool = Workers([Worker(sessions, store, blobs, options, grader=grader, job_timeout_s=limits.job_timeout_s)
                    for _ in range(count)])

    app = FastAPI(
        title="vmgrade",
        version=__version__,
        description="Grade practice voicemails: upload or record, then read the report. "
                    "Log in with POST /api/login (after GET /api/csrf); send the CSRF token as "
                    "the X-CSRF-Token header on every POST.",
        docs_url=None,  # served by routes.api from the packaged Swagger UI: no CDN, works offline
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=_lifespan,
    )
    # What deps.py hands the routes.
    app.state.store, app.state.sessions, app.state.workers = store, sessions, pool
    app.state.worker = pool.workers[0] if pool.workers else None  # the first (tests reach into it)
    app.state.settings = Settings(data_dir, max_upload_bytes, max_duration_s, https_only, max_queued_per_user,
                                  limits, blobs)
    app.state.db_slots = Slots(limits.db_slots, DB_MAX_WAITING)
    app.state.login_counters = LoginCounters()
    app.state.start_worker = start_worker
    app.state.data_dir_lock = None  # taken at startup (or before it, by `vmgrade serve`)
    app.state.docs_assets = _swagger_ui_dir()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["version"] = __version__
    templates.env.globals["max_upload_mb"] = max_upload_bytes / 2**20
    templates.env.globals["max_duration_s"] = max_duration_s
    app.state.templates = templates

    # Added innermost first: the session wraps the headers, which wrap the gate (login before an
    # upload's body; body timeouts), which wraps the size limit (so only logged-in bodies are drained).
    app.add_middleware(BodySizeLimit, max_upload_body_bytes=max_upload_bytes + FORM_OVERHEAD_BYTES,
                       max_upload_bytes=max_upload_bytes)
    app.add_middleware(RequestGate, limits=limits)
    app.add_middleware(BaseHTTPMiddleware, dispatch=security_headers)
    app.add_middleware(SessionMiddleware, secret_key=secret,
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE_S, same_site="lax",
                       https_only=https_only)

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    if app.state.docs_assets is not None:
        app.mount(api.DOCS_ASSETS, StaticFiles(directory=str(app.state.docs_assets)), name="docs-assets")
    app.add_exception_handler(StarletteHTTPException, pages.http_error)
    app.add_exception_handler(LoginRequired, pages.to_login)
    app.add_exception_handler(PoolTimeout, _pool_timeout)
    app.add_exception_handler(OSError, _storage_full)
    app.add_exception_handler(OperationalError, _storage_full)
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(team.router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Lock the data dir, clean what a previous run left, requeue expired jobs, run the workers.

    Only jobs whose lease expired, or whose worker on this machine is gone, are requeued: the
    jobs of live workers elsewhere are left alone.

    Raises
    ------
    DataDirInUse
        Another server uses the data dir (it would requeue that one's running job).
    """
    settings: Settings = app.state.settings
    own_lock = app.state.data_dir_lock is None
    if own_lock:
        app.state.data_dir_lock = lock_data_dir(settings.data_dir)
    try:
        removed = clean_tmp(settings.data_dir)
        if removed:
            log.warning("removed %d file(s) an interrupted run left in %s", removed, settings.data_dir)
        reap_expired(app.state.sessions)
        workers: Workers = app.state.workers
        workers.start()
        try:
            yield
        finally:
            workers.stop()
    finally:
        if own_lock:
            unlock_data_dir(app.state.data_dir_lock)
            app.state.data_dir_lock = None


async def _pool_timeout(request: Request, exc: PoolTimeout) -> Response:
    """No pooled connection came in time (the pool's own wait): 503 ``busy``, not a 500."""
    return await pages.http_error(request, busy())


async def _storage_full(request: Request, exc: Exception) -> Response:
    """A full disk (ENOSPC, or SQLite's "database or disk is full"): 507 ``storage_full``; others raise."""
    if not is_storage_full(exc):
        raise exc
    log.error("storage full: %s", exc)
    return await pages.http_error(request, WebError(507, storage_full_message(), code="storage_full"))


def _secret_key(data_dir: Path, given: str | None, key_file: str | os.PathLike | None, *,
                shared: bool) -> str:
    """The session secret: ``given``, ``$VMGRADE_SECRET_KEY``, the file ``key_file`` or
    ``$VMGRADE_SECRET_KEY_FILE``; else, on a database of this node's own, a random key kept in
    ``<data_dir>/secret_key`` (created once, mode 600).

    Raises
    ------
    SecretRequired
        ``shared`` and no secret given: every node must sign sessions with the same one.
    """
    secret = given or os.environ.get(SECRET_ENV)
    key_file = key_file or os.environ.get(SECRET_FILE_ENV)
    if not secret and key_file:
        try:
            secret = Path(key_file).expanduser().read_text().strip()
        except OSError as exc:
            raise SecretRequired(f"{key_file}: cannot read the session secret ({exc.strerror})",
                                 path=str(key_file)) from exc
        if not secret:
            raise SecretRequired(f"{key_file}: the session secret file is empty", path=str(key_file))
    if secret:
        return secret
    if shared:
        raise SecretRequired(
            "secret_required: several nodes on one database must share one session secret; set "
            f"${SECRET_ENV}, or ${SECRET_FILE_ENV} (or --secret-key-file) to a file holding it "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')")
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def _swagger_ui_dir() -> Path | None:
    """Swagger UI's files as packaged by fastapi-offline, or None (then FastAPI's CDN copy)."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    return Path(fastapi_offline.__file__).resolve().parent / "static"
