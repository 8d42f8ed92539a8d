"""The FastAPI app: server-rendered pages, a JSON API under /api, one grading worker.

Security model
--------------
* Passwords: argon2id (argon2-cffi). Sessions: Starlette's signed cookie
  (itsdangerous), HttpOnly, SameSite=Lax, Secure when ``https_only``.
* CSRF: a random per-session token; every POST form carries it as
  ``csrf_token`` and every state-changing API call as the ``X-CSRF-Token`` header.
* Failed logins: locked per (username, client address) after
  ``accounts.MAX_FAILED_LOGINS``; the count lives in the database.
* Access: a rep sees only their own uploads, a trainer their team's; anything
  else answers 404 (not 403, so ids of others' recordings are not confirmed).
  Anonymous page requests are redirected to /login, API calls get 401.
"""


import hmac
import json
import logging
import os
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from .._version import __version__
from ..audio import DEFAULT_MAX_DURATION_S
from ..pipeline import GradeOptions, Grader
from . import accounts, dashboard
from .jobs import Worker, queue_position, report_html_path, requeue_interrupted
from .storage import MAX_UPLOAD_BYTES, UploadError, context_key, ensure_layout, format_size, receive
from .tables import Job, Upload, User

log = logging.getLogger("vmgrade.web")

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "vmgrade_session"
SESSION_MAX_AGE_S = 12 * 3600
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the context fields around the file
# Read (and drop) up to this much of an oversized body, so browsers show the 413 and not a reset.
DRAIN_LIMIT_BYTES = 256 * 1024 * 1024
UPLOAD_PATHS = ("/upload", "/api/uploads")
CONTEXT_FIELDS = ("caller_name", "company", "callback_number", "prospect_name", "prospect_company")
CONTEXT_MAX_CHARS = 200
FILENAME_MAX_CHARS = 255  # the column's width; the end of a long name keeps its extension
APP_CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; "
           "script-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'")
# The report page (issue 5) is self-contained with inline script and data: media; it may not phone out.
REPORT_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "img-src data: blob:; media-src data: blob: 'self'; font-src data:; frame-ancestors 'self'; "
              "form-action 'none'; base-uri 'none'")

DOCS_ASSETS = "/api/docs-assets"
# Swagger UI starts itself with an inline script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'none'")
DOCS_CDN_CSP = DOCS_CSP.replace("'self' 'unsafe-inline'", "'self' 'unsafe-inline' https://cdn.jsdelivr.net")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    max_upload_bytes: int
    max_duration_s: float
    https_only: bool


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to /login."""


class BodyTooLarge(Exception):
    pass


# ---------------------------------------------------------------- API models (OpenAPI docs)

class UserOut(BaseModel):
    username: str
    role: str
    team: str


class LoginIn(BaseModel):
    username: str
    password: str


class LoginOut(UserOut):
    csrf_token: str


class CsrfOut(BaseModel):
    csrf_token: str


class RecordingOut(BaseModel):
    id: int
    rep: str
    filename: str
    source: str
    media_type: str
    size_bytes: int
    duration_s: float
    context: dict[str, str]
    created_at: datetime
    state: str
    queue_position: int | None = None
    score: float | None = None
    grade: str | None = None
    error_code: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    report_url: str | None = None
    page_url: str
    duplicate: bool = False


class RepOut(BaseModel):
    username: str
    recordings: int
    latest_score: float | None
    latest_grade: str | None
    latest_at: datetime | None
    average: float | None
    change: float | None
    trend_per_recording: float | None
    scores: list[float]


class TeamOut(BaseModel):
    team: str
    reps: list[RepOut]
    common_findings: list[tuple[str, int]]


# ---------------------------------------------------------------- the app

def create_app(
    data_dir: str | os.PathLike | None = None,
    db_url: str | None = None,
    *,
    grade_options: GradeOptions | None = None,
    grader: Grader | None = None,
    start_worker: bool = True,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    secret_key: str | None = None,
    https_only: bool = False,
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
        Run the grading thread (False: jobs stay queued; for tests of the queue).
    max_upload_bytes : int
        Largest upload accepted, bytes (default 20 MiB).
    max_duration_s : float
        Longest recording accepted, seconds (default :data:`vmgrade.audio.DEFAULT_MAX_DURATION_S`).
    secret_key : str, optional
        Signs session cookies; default ``$VMGRADE_SECRET_KEY``, else a random key
        kept in ``<data_dir>/secret_key``.
    https_only : bool
        Mark the session cookie Secure (set this behind HTTPS).
    """
    from ..store.history import data_dir as default_data_dir
    from ..store.history import open_store

    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_layout(data_dir)
    db_url = db_url or os.environ.get("VMGRADE_DB_URL") or f"sqlite:///{data_dir / 'history.sqlite3'}"
    store = open_store(db_url)
    # The history store's engine: on SQLite it sets WAL and a 30 s busy timeout, and the
    # driver opens a transaction only at the first write, so reads never hold the write lock.
    sessions = sessionmaker(store.engine, expire_on_commit=False)
    settings = Settings(data_dir, max_upload_bytes, max_duration_s, https_only)

    options = grade_options or GradeOptions()
    worker = Worker(sessions, store, data_dir,
                    (lambda: grader) if grader is not None else (lambda: Grader(options)))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        requeued, given_up = requeue_interrupted(sessions)
        if requeued or given_up:
            log.warning("requeued %d interrupted job(s); gave up on %d", requeued, given_up)
        if start_worker:
            worker.start()
            worker.wake()
        try:
            yield
        finally:
            worker.stop()

    app = FastAPI(
        title="vmgrade",
        version=__version__,
        description="Grade practice voicemails: upload or record, then read the report. "
                    "Log in with POST /api/login (after GET /api/csrf); send the CSRF token as "
                    "the X-CSRF-Token header on every POST.",
        docs_url=None,  # served below from the packaged Swagger UI: no CDN, works offline
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.store, app.state.sessions, app.state.worker = store, sessions, worker
    app.state.settings = settings
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["version"] = __version__
    templates.env.globals["max_upload_mb"] = max_upload_bytes / 2**20
    templates.env.globals["max_duration_s"] = max_duration_s

    def render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        context.setdefault("user", getattr(request.state, "user", None))
        context["csrf_token"] = csrf_token(request)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    # -------------------------------------------------------- middleware
    app.add_middleware(UploadSizeLimit, max_body_bytes=max_upload_bytes + FORM_OVERHEAD_BYTES,
                       max_upload_bytes=max_upload_bytes)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", APP_CSP)
        if request.url.path.startswith("/api/") or request.url.path in ("/login",):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.add_middleware(SessionMiddleware, secret_key=secret_key or _secret_key(data_dir),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_MAX_AGE_S, same_site="lax",
                       https_only=https_only)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    docs_assets = _swagger_ui_dir()
    if docs_assets is not None:
        app.mount(DOCS_ASSETS, StaticFiles(directory=str(docs_assets)), name="docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs():
        kwargs = {}
        if docs_assets is not None:
            kwargs = dict(swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                          swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                          swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")
        page = get_swagger_ui_html(openapi_url=app.openapi_url, title="vmgrade API", **kwargs)
        page.headers["Content-Security-Policy"] = DOCS_CSP if docs_assets is not None else DOCS_CDN_CSP
        return page

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        return render(request, "error.html", exc.status_code, status=exc.status_code, message=exc.detail)

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    # -------------------------------------------------------- dependencies
    def db():
        with sessions() as s:
            yield s

    DB = Annotated[Session, Depends(db)]

    def session_user(request: Request, s: DB) -> User | None:
        uid = request.session.get("uid")
        user = s.get(User, uid) if isinstance(uid, int) else None
        if user is None or not user.active:
            return None
        request.state.user = user
        return user

    def page_user(user: Annotated[User | None, Depends(session_user)]) -> User:
        if user is None:
            raise LoginRequired()
        return user

    def api_user(user: Annotated[User | None, Depends(session_user)]) -> User:
        if user is None:
            raise HTTPException(401, "not logged in: POST /api/login first",
                                headers={"WWW-Authenticate": 'Cookie realm="vmgrade"'})
        return user

    def api_csrf(request: Request, x_csrf_token: Annotated[str | None, Header(
            description="the session's CSRF token, from GET /api/csrf or POST /api/login")] = None) -> None:
        if not _csrf_ok(request, x_csrf_token):
            raise HTTPException(403, "missing or wrong X-CSRF-Token header (GET /api/csrf)")

    PageUser = Annotated[User, Depends(page_user)]
    ApiUser = Annotated[User, Depends(api_user)]

    def form_csrf(request: Request, token: str | None) -> None:
        if not _csrf_ok(request, token):
            raise HTTPException(403, "form expired or forged (CSRF token mismatch): "
                                     "reload the page and retry")

    # -------------------------------------------------------- shared logic
    def accept_upload(s: Session, user: User, file: UploadFile, context: dict[str, str],
                      source: str) -> tuple[Upload, bool]:
        stored = receive(file.file, data_dir, file.filename or "upload",
                         max_bytes=max_upload_bytes, max_duration_s=max_duration_s)
        key = context_key(context)
        existing = _find_upload(s, user.id, stored.sha256, key)
        if existing is not None:
            return existing, True
        filename = os.path.basename(file.filename or "")[-FILENAME_MAX_CHARS:] \
            or f"recording.{stored.relpath.rsplit('.', 1)[1]}"
        upload = Upload(user_id=user.id, sha256=stored.sha256, stored_path=stored.relpath, filename=filename,
                        media_type=stored.media_type, size_bytes=stored.size_bytes,
                        duration_s=stored.duration_s, source=source, context=context, context_key=key)
        upload.job = Job(state="queued", attempts=0)
        s.add(upload)
        try:
            s.commit()
        except IntegrityError:  # the same upload raced in from a retried request
            s.rollback()
            existing = _find_upload(s, user.id, stored.sha256, key)
            if existing is None:
                raise
            return existing, True
        worker.wake()
        return upload, False

    def recording_out(s: Session, upload: Upload, duplicate: bool = False) -> RecordingOut:
        job = upload.job
        return RecordingOut(
            id=upload.id, rep=upload.user.username, filename=upload.filename, source=upload.source,
            media_type=upload.media_type, size_bytes=upload.size_bytes, duration_s=upload.duration_s,
            context=upload.context or {}, created_at=upload.created_at, state=job.state,
            queue_position=queue_position(s, job) if job.state == "queued" else None,
            score=job.score, grade=job.letter, error_code=job.error_code, error=job.error_message,
            started_at=job.started_at, finished_at=job.finished_at,
            report_url=f"/recordings/{upload.id}/report" if job.state == "done" else None,
            page_url=f"/recordings/{upload.id}", duplicate=duplicate,
        )

    def visible(s: Session, user: User, upload_id: int) -> Upload:
        upload = s.get(Upload, upload_id)
        if upload is None or not _may_see(user, upload):
            raise HTTPException(404, f"no recording {upload_id} that you may see")
        return upload

    def load_report(upload: Upload) -> dict:
        job = upload.job
        if job.state != "done" or not job.report_path:
            raise HTTPException(409, f"recording {upload.id} is {job.state}, not graded yet")
        with open(data_dir / job.report_path, encoding="utf-8") as f:
            return json.load(f)

    def team_overview(s: Session, user: User) -> tuple[list[dashboard.RepSummary], list[tuple[str, int]]]:
        team_users = s.scalars(select(User).where(User.team_id == user.team_id).order_by(User.username)).all()
        rows = s.scalars(_visible_query(user).where(Job.state == "done")
                         .order_by(Upload.created_at, Upload.id)).all()
        reps = {u.username: dashboard.RepSummary(u.username) for u in team_users if u.role == "rep"}
        for upload in rows:
            rep = reps.setdefault(upload.user.username, dashboard.RepSummary(upload.user.username))
            rep.points.append(dashboard.Point(upload.created_at, upload.job.score or 0.0, upload.filename))
            rep.letter = upload.job.letter
        findings = dashboard.common_findings([u.job.finding_codes or [] for u in rows])
        return list(reps.values()), findings

    def comparison_for(s: Session, user: User, ids: list[int]):
        if len(ids) < 2:
            raise HTTPException(400, "pick two or more recordings to compare")
        # Recording order, so two picks read before -> after whatever order they were ticked in.
        uploads = sorted((visible(s, user, i) for i in dict.fromkeys(ids)),
                         key=lambda u: (u.created_at, u.id))
        if len(uploads) < 2:
            raise HTTPException(400, "pick two or more different recordings to compare")
        # The stored audio (so the comparison embeds it) and the upload time (its timeline).
        reports = [{**load_report(u), "file": str(data_dir / u.stored_path),
                    "recorded_at": u.created_at.isoformat() + "Z"} for u in uploads]
        labels = [f"{u.user.username} {u.created_at:%Y-%m-%d %H:%M} #{u.id}" for u in uploads]
        from ..compare import compare_reports

        return compare_reports(reports, labels)

    def upload_context(values: dict[str, str | None]) -> dict[str, str]:
        context = {}
        for name in CONTEXT_FIELDS:
            value = (values.get(name) or "").strip()
            if len(value) > CONTEXT_MAX_CHARS:
                raise UploadError(f"{name.replace('_', ' ')} is over {CONTEXT_MAX_CHARS} characters",
                                  code="bad_context", status=400)
            if value:
                context[name] = value
        return context

    # -------------------------------------------------------- pages
    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)  # none: keeps browsers' consoles free of 404s

    @app.get("/", include_in_schema=False)
    def home(user: PageUser):
        return RedirectResponse("/team" if user.is_trainer else "/recordings", status_code=303)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, s: DB, next: str = "/"):
        return render(request, "login.html", next=_safe_next(next), no_users=accounts.count_users(s) == 0,
                      user=None)

    @app.post("/login", include_in_schema=False)
    def login_submit(request: Request, s: DB, username: Annotated[str, Form()] = "",
                     password: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
                     next: Annotated[str, Form()] = "/"):
        if not _csrf_ok(request, csrf_token):
            return render(request, "login.html", 403, next=_safe_next(next), user=None,
                          error="The form expired. Please try again.")
        result = accounts.authenticate(s, username, password, _client_ip(request))
        if result.locked_for_s:
            minutes = max(1, round(result.locked_for_s / 60))
            return render(request, "login.html", 429, next=_safe_next(next), user=None,
                          error=f"Too many failed logins. Try again in {minutes} minute(s).")
        if result.user is None:
            return render(request, "login.html", 401, next=_safe_next(next), user=None,
                          error="Wrong username or password.")
        _start_session(request, result.user)
        return RedirectResponse(_safe_next(next), status_code=303)

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf_token: Annotated[str, Form()] = ""):
        form_csrf(request, csrf_token)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/upload", include_in_schema=False)
    def upload_page(request: Request, user: PageUser):
        return render(request, "upload.html", values={})

    @app.post("/upload", include_in_schema=False)
    def upload_submit(request: Request, user: PageUser, s: DB, values: Annotated[dict, Depends(context_form)],
                      file: Annotated[UploadFile | None, File()] = None,
                      csrf_token: Annotated[str, Form()] = "",
                      source: Annotated[str, Form()] = "upload"):
        form_csrf(request, csrf_token)
        if file is None or not file.filename:
            return render(request, "upload.html", 400, values=values, error="Choose a file to upload.")
        try:
            upload, _ = accept_upload(s, user, file, upload_context(values),
                                      "browser" if source == "browser" else "upload")
        except UploadError as exc:
            return render(request, "upload.html", exc.status, values=values, error=exc.message)
        return RedirectResponse(f"/recordings/{upload.id}", status_code=303)

    @app.get("/recordings", include_in_schema=False)
    def recordings_page(request: Request, user: PageUser, s: DB, rep: str | None = None):
        query = _visible_query(user).order_by(Upload.created_at, Upload.id)
        if rep:
            query = query.where(User.username == rep)
        uploads = s.scalars(query).all()
        points = [dashboard.Point(u.created_at, u.job.score, u.filename) for u in uploads
                  if u.job.state == "done" and u.job.score is not None]
        chart = dashboard.score_chart_svg(points) if (not user.is_trainer or rep) else None
        return render(request, "recordings.html", uploads=list(reversed(uploads)), chart=chart, rep=rep)

    @app.get("/recordings/{upload_id}", include_in_schema=False)
    def recording_page(request: Request, upload_id: int, user: PageUser, s: DB):
        upload = visible(s, user, upload_id)
        return render(request, "recording.html", upload=upload, job=upload.job,
                      position=queue_position(s, upload.job) if upload.job.state == "queued" else None)

    @app.get("/recordings/{upload_id}/report", include_in_schema=False)
    def report_page(upload_id: int, user: PageUser, s: DB):
        upload = visible(s, user, upload_id)
        report = load_report(upload)
        cached = report_html_path(data_dir, upload.id)
        if not cached.exists():  # the worker renders it after grading; this is the fallback
            from ..render.html import write_report_html

            write_report_html(report, cached, data_dir / upload.stored_path)
        return FileResponse(cached, media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": REPORT_CSP})

    @app.get("/recordings/{upload_id}/audio", include_in_schema=False)
    def audio_file(upload_id: int, user: PageUser, s: DB):
        upload = visible(s, user, upload_id)
        return FileResponse(data_dir / upload.stored_path, media_type=upload.media_type)

    @app.get("/team", include_in_schema=False)
    def team_page(request: Request, user: PageUser, s: DB):
        if not user.is_trainer:
            raise HTTPException(403, "the team dashboard is for trainers")
        reps, findings = team_overview(s, user)
        latest = s.scalars(_visible_query(user).where(Job.state.in_(("done", "failed")))
                           .order_by(Upload.created_at.desc(), Upload.id.desc()).limit(50)).all()
        return render(request, "team.html", reps=reps, findings=findings, latest=latest,
                      sparkline=dashboard.sparkline_svg)

    @app.get("/compare", include_in_schema=False)
    def compare_page(user: PageUser, s: DB, ids: Annotated[list[int], Query()] = ()):  # noqa: B008
        from ..render.html import render_comparison_html

        return HTMLResponse(render_comparison_html(comparison_for(s, user, list(ids))),
                            headers={"Content-Security-Policy": REPORT_CSP})

    # -------------------------------------------------------- API
    @app.get("/api/csrf", response_model=CsrfOut, tags=["auth"])
    def api_get_csrf(request: Request):
        """The session's CSRF token (starts an anonymous session if needed)."""
        return CsrfOut(csrf_token=csrf_token(request))

    @app.post("/api/login", response_model=LoginOut, tags=["auth"],
              responses={401: {"description": "wrong credentials"}, 429: {"description": "locked out"}})
    def api_login(request: Request, body: LoginIn, s: DB, _: Annotated[None, Depends(api_csrf)]):
        result = accounts.authenticate(s, body.username, body.password, _client_ip(request))
        if result.locked_for_s:
            raise HTTPException(429, f"too many failed logins; retry in {result.locked_for_s:.0f} s",
                                headers={"Retry-After": str(int(result.locked_for_s) + 1)})
        if result.user is None:
            raise HTTPException(401, "wrong username or password")
        token = _start_session(request, result.user)
        return LoginOut(**_user_out(result.user).model_dump(), csrf_token=token)

    @app.post("/api/logout", status_code=204, tags=["auth"])
    def api_logout(request: Request, _: Annotated[None, Depends(api_csrf)]):
        request.session.clear()
        return Response(status_code=204)

    @app.get("/api/me", response_model=UserOut, tags=["auth"])
    def api_me(user: ApiUser):
        return _user_out(user)

    @app.post("/api/uploads", response_model=RecordingOut, status_code=202, tags=["recordings"],
              responses={200: {"description": "the same upload already exists (dedup)"},
                         413: {"description": "file too large"}, 415: {"description": "not audio"},
                         422: {"description": "audio unusable (too long, silent, truncated...)"}})
    def api_upload(user: ApiUser, s: DB, _: Annotated[None, Depends(api_csrf)],
                   values: Annotated[dict, Depends(context_form)],
                   file: Annotated[UploadFile, File(description="the recording")],
                   source: Annotated[str, Form()] = "upload"):
        """Store a recording and queue it for grading; poll GET /api/recordings/{id}.

        Optional form fields: caller_name, company, callback_number, prospect_name, prospect_company.
        """
        try:
            upload, duplicate = accept_upload(s, user, file, upload_context(values),
                                              "browser" if source == "browser" else "upload")
        except UploadError as exc:
            return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=exc.status)
        out = recording_out(s, upload, duplicate)
        return JSONResponse(out.model_dump(mode="json"), status_code=200 if duplicate else 202)

    @app.get("/api/recordings", response_model=list[RecordingOut], tags=["recordings"])
    def api_recordings(user: ApiUser, s: DB, rep: str | None = None):
        """Recordings you may see, oldest first (a trainer: the team's; filter with ?rep=)."""
        query = _visible_query(user).order_by(Upload.created_at, Upload.id)
        if rep:
            query = query.where(User.username == rep)
        return [recording_out(s, u) for u in s.scalars(query).all()]

    @app.get("/api/recordings/{upload_id}", response_model=RecordingOut, tags=["recordings"])
    def api_recording(upload_id: int, user: ApiUser, s: DB):
        return recording_out(s, visible(s, user, upload_id))

    @app.get("/api/recordings/{upload_id}/report", tags=["recordings"],
             responses={409: {"description": "not graded yet"}})
    def api_report(upload_id: int, user: ApiUser, s: DB) -> dict[str, Any]:
        """The JSON report (README: "JSON report")."""
        return load_report(visible(s, user, upload_id))

    @app.get("/api/team", response_model=TeamOut, tags=["team"])
    def api_team(user: ApiUser, s: DB):
        """Team dashboard numbers (trainers only)."""
        if not user.is_trainer:
            raise HTTPException(403, "the team dashboard is for trainers")
        reps, findings = team_overview(s, user)
        return TeamOut(team=user.team.name, common_findings=findings, reps=[
            RepOut(username=r.username, recordings=r.count,
                   latest_score=r.latest.score if r.latest else None, latest_grade=r.letter,
                   latest_at=r.latest.when if r.latest else None, average=r.average, change=r.change,
                   trend_per_recording=r.trend_per_recording, scores=[p.score for p in r.points])
            for r in reps])

    @app.get("/api/compare", tags=["recordings"])
    def api_compare(user: ApiUser, s: DB, ids: Annotated[list[int], Query()] = ()) -> dict[str, Any]:  # noqa: B008
        """Compare two or more graded recordings (``?ids=3&ids=7``), oldest first."""
        return comparison_for(s, user, list(ids)).to_dict()

    return app


# ---------------------------------------------------------------- helpers

def context_form(caller_name: Annotated[str, Form()] = "", company: Annotated[str, Form()] = "",
                 callback_number: Annotated[str, Form()] = "", prospect_name: Annotated[str, Form()] = "",
                 prospect_company: Annotated[str, Form()] = "") -> dict[str, str]:
    """The optional call-context form fields."""
    return dict(caller_name=caller_name, company=company, callback_number=callback_number,
                prospect_name=prospect_name, prospect_company=prospect_company)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok(request: Request, token: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and token) and hmac.compare_digest(str(expected), str(token))


def _start_session(request: Request, user: User) -> str:
    """Log ``user`` in with a fresh session (and CSRF token), so no pre-login state carries over."""
    request.session.clear()
    request.session["uid"] = user.id
    return csrf_token(request)


def _user_out(user: User) -> UserOut:
    return UserOut(username=user.username, role=user.role, team=user.team.name)


def _may_see(user: User, upload: Upload) -> bool:
    if user.is_trainer:
        return upload.user.team_id == user.team_id
    return upload.user_id == user.id


def _visible_query(user: User):
    query = select(Upload).join(Upload.user).join(Upload.job)
    if user.is_trainer:
        return query.where(User.team_id == user.team_id)
    return query.where(Upload.user_id == user.id)


def _find_upload(s: Session, user_id: int, sha: str, key: str) -> Upload | None:
    return s.scalar(select(Upload).where(Upload.user_id == user_id, Upload.sha256 == sha,
                                         Upload.context_key == key))


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a login to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _secret_key(data_dir: Path) -> str:
    env = os.environ.get("VMGRADE_SECRET_KEY")
    if env:
        return env
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


class UploadSizeLimit:
    """Refuse upload bodies over the limit before they are spooled to disk (pure ASGI)."""

    def __init__(self, app, max_body_bytes: int, max_upload_bytes: int,
                 paths: tuple[str, ...] = UPLOAD_PATHS):
        self.app, self.max_body_bytes, self.paths = app, max_body_bytes, paths
        self.message = f"The file is over the {format_size(max_upload_bytes)} limit."

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            drained = 0
            while drained <= DRAIN_LIMIT_BYTES:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            await self._too_large(scope)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(scope)(scope, receive, send)

    def _too_large(self, scope) -> Response:
        if scope["path"].startswith("/api/"):
            return JSONResponse({"detail": self.message, "code": "too_large"}, status_code=413)
        return HTMLResponse(_TOO_LARGE_PAGE.format(message=self.message), status_code=413)


_TOO_LARGE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>File too large - vmgrade</title>
<link rel="stylesheet" href="/static/style.css"></head><body><main>
<p class="error" role="alert">{message}</p><p><a href="/upload">Back to upload</a></p></main></body></html>"""
