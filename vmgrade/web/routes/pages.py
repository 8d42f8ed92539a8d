"""The server-rendered pages (none in the OpenAPI docs), and the error answers for pages."""

from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...store.blobs import LocalBlobs, report_html_key
from ...store.team import Upload, User
from .. import accounts, dashboard
from ..deps import (
    DB,
    AppSettings,
    GradingWorker,
    LoginDB,
    LoginRequired,
    PageUser,
    check_form_csrf,
    client_ip,
    context_form,
    csrf_ok,
    csrf_token,
    end_session,
    render,
    start_session,
)
from ..jobs import queue_position
from ..recordings import (
    accept_upload,
    comparison_for,
    load_report,
    report_damaged,
    upload_context,
    visible,
    visible_query,
    without_audio,
)
from ..storage import UploadError

# The report page (issue 5) is self-contained with inline script and data: media; it may not phone out.
# Its one form is the app bar's log out (a POST here).
REPORT_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "img-src data: blob:; media-src data: blob: 'self'; font-src data:; frame-ancestors 'self'; "
              "form-action 'self'; base-uri 'none'")

if TYPE_CHECKING:
    from ...render.html import AppNav

router = APIRouter(include_in_schema=False)


# ---------------------------------------------------------------- error answers (registered by the app)

async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """HTTP errors: JSON under /api/, the error page everywhere else."""
    code = getattr(exc, "code", None)  # a WebError's
    if request.url.path.startswith("/api/"):
        if code is None:
            return await http_exception_handler(request, exc)
        return JSONResponse({"detail": exc.detail, "code": code}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))
    response = render(request, "error.html", exc.status_code, status=exc.status_code, message=exc.detail)
    for name, value in (getattr(exc, "headers", None) or {}).items():
        response.headers.setdefault(name, value)
    return response


async def to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
    """Send an anonymous visitor to /login, and back here after it."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


# ---------------------------------------------------------------- pages

@router.get("/favicon.ico")
def favicon():
    return Response(status_code=204)  # none: keeps browsers' consoles free of 404s


@router.get("/")
def home(user: PageUser):
    return RedirectResponse("/team" if user.is_trainer else "/recordings", status_code=303)


@router.get("/login")
def login_page(request: Request, s: DB, next: str = "/"):
    return render(request, "login.html", next=_safe_next(next), no_users=accounts.count_users(s) == 0,
                  user=None)


@router.post("/login")
def login_submit(request: Request, s: LoginDB, username: Annotated[str, Form()] = "",
                 password: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "/"):
    if not csrf_ok(request, csrf_token):
        return render(request, "login.html", 403, next=_safe_next(next), user=None,
                      error="The form expired. Please try again.")
    result = accounts.authenticate(s, username, password, client_ip(request),
                                   counters=request.app.state.login_counters)
    if result.busy:
        return render(request, "login.html", 429, next=_safe_next(next), user=None,
                      error="Too many logins at once. Try again in a few seconds.")
    if result.locked_for_s:
        minutes = max(1, round(result.locked_for_s / 60))
        return render(request, "login.html", 429, next=_safe_next(next), user=None,
                      error=f"Too many failed logins. Try again in {minutes} minute(s).")
    if result.user is None:
        return render(request, "login.html", 401, next=_safe_next(next), user=None,
                      error="Wrong username or password.")
    start_session(request, result.user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, s: DB, csrf_token: Annotated[str, Form()] = ""):
    check_form_csrf(request, csrf_token)
    end_session(request, s)
    return RedirectResponse("/login", status_code=303)


@router.get("/upload")
def upload_page(request: Request, user: PageUser):
    return render(request, "upload.html", values={})


@router.post("/upload")
def upload_submit(request: Request, user: PageUser, s: DB, settings: AppSettings, worker: GradingWorker,
                  values: Annotated[dict, Depends(context_form)],
                  file: Annotated[UploadFile | None, File()] = None,
                  csrf_token: Annotated[str, Form()] = "",
                  source: Annotated[str, Form()] = "upload"):
    check_form_csrf(request, csrf_token)
    if file is None or not file.filename:
        return render(request, "upload.html", 400, values=values, error="Choose a file to upload.")
    try:
        upload, _ = accept_upload(s, user, file, upload_context(values),
                                  "browser" if source == "browser" else "upload", settings, worker)
    except UploadError as exc:
        return render(request, "upload.html", exc.status, values=values, error=exc.message)
    return RedirectResponse(f"/recordings/{upload.id}", status_code=303)


@router.get("/recordings")
def recordings_page(request: Request, user: PageUser, s: DB, rep: str | None = None):
    query = visible_query(user).order_by(Upload.created_at, Upload.id)
    if rep:
        query = query.where(User.username == rep)
    uploads = s.scalars(query).all()
    points = [dashboard.Point(u.created_at, u.job.score, u.filename) for u in uploads
              if u.job.state == "done" and u.job.score is not None]
    chart = dashboard.score_chart_svg(points) if (not user.is_trainer or rep) else None
    return render(request, "recordings.html", uploads=list(reversed(uploads)), chart=chart, rep=rep)


@router.get("/recordings/{upload_id}")
def recording_page(request: Request, upload_id: int, user: PageUser, s: DB):
    upload = visible(s, user, upload_id)
    return render(request, "recording.html", upload=upload, job=upload.job,
                  position=queue_position(s, upload.job) if upload.job.state == "queued" else None)


@router.get("/recordings/{upload_id}/report")
def report_page(request: Request, upload_id: int, user: PageUser, s: DB, settings: AppSettings,
                embed: bool = False):
    """The report page, with the app bar; ``?embed=1``: without it (the frame in the recording page)."""
    upload = visible(s, user, upload_id)
    files = settings.files
    report = load_report(upload, files)
    key = report_html_key(upload.id)
    cached = files.read(key)
    if cached is None:  # rendered at the first view, then kept (workers spend their time grading)
        cached = _render_report(report, upload, files, settings.data_dir).encode()
        files.write(key, cached)
    if embed:
        return Response(cached, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": REPORT_CSP})
    from ...render.html import insert_app_nav

    # the stored page is the one `vmgrade grade --html` would write; the bar (per user) goes in here
    page = insert_app_nav(cached.decode("utf-8"), app_nav(request, user))
    return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_CSP})


def _render_report(report: dict, upload: Upload, files, data_dir) -> str:
    """The report page, with its audio when the stored audio still decodes (422 when it cannot be drawn)."""
    from ...errors import VmgradeError
    from ...render.html import render_report_html

    with files.local_file(upload.stored_path) as audio:
        try:
            try:
                if audio is not None:
                    return render_report_html(report, audio)
            except VmgradeError:  # the stored audio no longer decodes: the page goes without it
                pass
            return render_report_html(without_audio(report, data_dir))
        except Exception as exc:  # noqa: BLE001 - valid JSON, yet not a report the renderer can draw
            raise report_damaged(upload.id) from exc


@router.get("/recordings/{upload_id}/audio")
def audio_file(request: Request, upload_id: int, user: PageUser, s: DB, settings: AppSettings):
    upload = visible(s, user, upload_id)
    files = settings.files
    if isinstance(files, LocalBlobs):
        path = files.path(upload.stored_path)
        if not path.is_file():
            raise HTTPException(404, f"the audio of recording {upload_id} is missing; upload it again")
        return FileResponse(path, media_type=upload.media_type)
    data = files.read(upload.stored_path)
    if data is None:
        raise HTTPException(404, f"the audio of recording {upload_id} is missing; upload it again")
    return byte_range_response(data, upload.media_type, request.headers.get("range"))


def byte_range_response(data: bytes, media_type: str, range_header: str | None) -> Response:
    """``data`` whole (200), or the one byte range asked for (206; 416 when it lies outside).

    Safari plays audio only from a server that answers ranges; FileResponse does this for files.
    """
    headers = {"Accept-Ranges": "bytes"}
    size = len(data)
    spec = (range_header or "").strip()
    if not spec.startswith("bytes=") or "," in spec:
        return Response(data, media_type=media_type, headers=headers)
    first, _, last = spec[len("bytes="):].partition("-")
    try:
        if first:
            start, end = int(first), (int(last) if last else size - 1)
        else:  # "bytes=-N": the last N bytes
            start, end = max(size - int(last), 0), size - 1
    except ValueError:
        return Response(data, media_type=media_type, headers=headers)
    end = min(end, size - 1)
    if start > end or start >= size:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    return Response(data[start:end + 1], status_code=206, media_type=media_type,
                    headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"})


# /team (the trainers' coaching dashboard) is in routes/team.py.


@router.get("/compare")
def compare_page(request: Request, user: PageUser, s: DB, settings: AppSettings,
                 ids: Annotated[list[int], Query()] = ()):  # noqa: B008
    from ...render.html import render_comparison_html

    with ExitStack() as files:  # the page embeds the audio: kept until it is drawn
        comparison = comparison_for(s, user, list(ids), settings.files, settings.data_dir, files)
        page = render_comparison_html(comparison, app_nav=app_nav(request, user))
    return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_CSP})


def app_nav(request: Request, user: User) -> "AppNav":
    """The app bar of ``base.html`` for the pages rendered by ``vmgrade.render.html`` (report, compare)."""
    from ...render.html import AppNav

    links = [("/recordings", "Recordings" if user.is_trainer else "My recordings"),
             ("/upload", "Upload or record")]
    if user.is_trainer:
        links.append(("/team", "Team dashboard"))
    return AppNav(links=tuple(links), user=f"{user.username} ({user.role}, {user.team.name})",
                  csrf_token=csrf_token(request))


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a login to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
