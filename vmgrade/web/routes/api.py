"""The JSON API under /api (documented at /api/docs) and its Swagger UI page."""

from contextlib import ExitStack
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ...store.team import Upload, User
from .. import accounts
from ..deps import (
    DB,
    ApiUser,
    AppSettings,
    GradingWorker,
    LoginDB,
    api_csrf,
    client_ip,
    context_form,
    csrf_token,
    end_session,
    start_session,
)
from ..recordings import (
    accept_upload,
    comparison_for,
    load_report,
    recording_out,
    upload_context,
    visible,
    visible_query,
)
from ..schemas import CsrfOut, LoginIn, LoginOut, RecordingOut, UserOut
from ..storage import UploadError

DOCS_ASSETS = "/api/docs-assets"  # where the app mounts the packaged Swagger UI files
# Swagger UI starts itself with an inline script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'none'")
DOCS_CDN_CSP = DOCS_CSP.replace("'self' 'unsafe-inline'", "'self' 'unsafe-inline' https://cdn.jsdelivr.net")

router = APIRouter()
CsrfChecked = Annotated[None, Depends(api_csrf)]


@router.get("/api/docs", include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI from the packaged files when the app found them (works offline), else from the CDN."""
    offline = request.app.state.docs_assets is not None
    kwargs = {}
    if offline:
        kwargs = dict(swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                      swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                      swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")
    page = get_swagger_ui_html(openapi_url=request.app.openapi_url, title="vmgrade API", **kwargs)
    page.headers["Content-Security-Policy"] = DOCS_CSP if offline else DOCS_CDN_CSP
    return page


# ---------------------------------------------------------------- auth

@router.get("/api/csrf", response_model=CsrfOut, tags=["auth"])
def api_get_csrf(request: Request):
    """The session's CSRF token (starts an anonymous session if needed)."""
    return CsrfOut(csrf_token=csrf_token(request))


@router.post("/api/login", response_model=LoginOut, tags=["auth"],
             responses={401: {"description": "wrong credentials"},
                        429: {"description": "locked out, or too_many_logins at once"}})
def api_login(request: Request, body: LoginIn, s: LoginDB, _: CsrfChecked):
    result = accounts.authenticate(s, body.username, body.password, client_ip(request),
                                   counters=request.app.state.login_counters)
    if result.busy:
        return JSONResponse({"detail": "too many logins are being checked at once; retry in a few seconds",
                             "code": "too_many_logins"}, status_code=429, headers={"Retry-After": "2"})
    if result.locked_for_s:
        raise HTTPException(429, f"too many failed logins; retry in {result.locked_for_s:.0f} s",
                            headers={"Retry-After": str(int(result.locked_for_s) + 1)})
    if result.user is None:
        raise HTTPException(401, "wrong username or password")
    token = start_session(request, result.user)
    return LoginOut(**_user_out(result.user).model_dump(), csrf_token=token)


@router.post("/api/logout", status_code=204, tags=["auth"])
def api_logout(request: Request, s: DB, _: CsrfChecked):
    """End the session, and every other session of the same user (server-side)."""
    end_session(request, s)
    return Response(status_code=204)


@router.get("/api/me", response_model=UserOut, tags=["auth"])
def api_me(user: ApiUser):
    return _user_out(user)


# ---------------------------------------------------------------- recordings

@router.post("/api/uploads", response_model=RecordingOut, status_code=202, tags=["recordings"],
             responses={200: {"description": "the same upload already exists (dedup)"},
                        408: {"description": "body_timeout: the body stopped arriving"},
                        413: {"description": "file too large"}, 415: {"description": "not audio"},
                        429: {"description": "queue_full, or too_many_requests (uploads in flight)"},
                        507: {"description": "storage_full: the server's disk is full"},
                        422: {"description": "audio unusable (too long, silent, truncated...)"}})
def api_upload(user: ApiUser, s: DB, _: CsrfChecked, settings: AppSettings, worker: GradingWorker,
               values: Annotated[dict, Depends(context_form)],
               file: Annotated[UploadFile, File(description="the recording")],
               source: Annotated[str, Form()] = "upload"):
    """Store a recording and queue it for grading; poll GET /api/recordings/{id}.

    Optional form fields: caller_name, company, callback_number, prospect_name, prospect_company.
    """
    try:
        upload, duplicate = accept_upload(s, user, file, upload_context(values),
                                          "browser" if source == "browser" else "upload", settings, worker)
    except UploadError as exc:
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=exc.status)
    out = recording_out(s, upload, duplicate)
    return JSONResponse(out.model_dump(mode="json"), status_code=200 if duplicate else 202)


@router.get("/api/recordings", response_model=list[RecordingOut], tags=["recordings"])
def api_recordings(user: ApiUser, s: DB, rep: str | None = None):
    """Recordings you may see, oldest first (a trainer: the team's; filter with ?rep=)."""
    query = visible_query(user).order_by(Upload.created_at, Upload.id)
    if rep:
        query = query.where(User.username == rep)
    return [recording_out(s, u) for u in s.scalars(query).all()]


@router.get("/api/recordings/{upload_id}", response_model=RecordingOut, tags=["recordings"])
def api_recording(upload_id: int, user: ApiUser, s: DB):
    return recording_out(s, visible(s, user, upload_id))


@router.get("/api/recordings/{upload_id}/report", tags=["recordings"],
            responses={409: {"description": "not graded yet"},
                       422: {"description": "report_damaged: the stored report cannot be read"}})
def api_report(upload_id: int, user: ApiUser, s: DB, settings: AppSettings) -> dict[str, Any]:
    """The JSON report (README: "JSON report")."""
    return load_report(visible(s, user, upload_id), settings.files)


# GET /api/team (the coaching dashboard's numbers) is in routes/team.py.


@router.get("/api/compare", tags=["recordings"])
def api_compare(user: ApiUser, s: DB, settings: AppSettings,
                ids: Annotated[list[int], Query()] = ()) -> dict[str, Any]:  # noqa: B008
    """Compare two or more graded recordings (``?ids=3&ids=7``), oldest first."""
    with ExitStack() as files:
        return comparison_for(s, user, list(ids), settings.files, settings.data_dir, files).to_dict()


def _user_out(user: User) -> UserOut:
    return UserOut(username=user.username, role=user.role, team=user.team.name)
