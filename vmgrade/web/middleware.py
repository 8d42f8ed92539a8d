"""The app's own middleware: security headers on every response, and request body size limits.

Session cookies come from Starlette's ``SessionMiddleware`` (registered in :mod:`vmgrade.web.app`).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .storage import format_size

APP_CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; "
           "script-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'")
UPLOAD_PATHS = ("/upload", "/api/uploads")
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the context fields around the file
MAX_BODY_BYTES = 64 * 1024  # every other request body (logins, forms, JSON): far above any real one
# Read (and drop) up to this much of an oversized upload, so browsers show the 413 and not a reset.
DRAIN_LIMIT_BYTES = 256 * 1024 * 1024
CACHEABLE_PREFIXES = ("/static/", "/api/docs-assets/")  # the only responses caches may keep

_TOO_LARGE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Too large - vmgrade</title>
<link rel="stylesheet" href="/static/style.css"></head><body><main>
<p class="error" role="alert">{message}</p><p><a href="{back}">Back</a></p></main></body></html>"""


async def security_headers(request: Request, call_next) -> Response:
    """Add the default security headers, and no-store on everything but static files; a route's own win.

    No-store keeps pages with names, scores and transcripts out of shared and back-button caches.
    """
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", APP_CSP)
    if not request.url.path.startswith(CACHEABLE_PREFIXES):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class BodyTooLarge(Exception):
    """The request body grew past the limit while the route was reading it."""


class BodySizeLimit:
    """Refuse request bodies over their limit (413, code ``too_large``) before they are read (pure ASGI).

    Uploads (POST to ``upload_paths``) may carry ``max_upload_body_bytes``; every other
    request ``max_body_bytes``. A declared ``Content-Length`` over the limit is answered at
    once (an upload's body is drained first, so browsers show the page); a chunked body is
    counted as it arrives and answered 413 as soon as it passes the limit, whatever the route
    had made of the cut-off body.

    Parameters
    ----------
    app : ASGI app
    max_upload_body_bytes : int
        Largest upload request accepted, bytes (the file plus the form around it).
    max_upload_bytes : int
        Largest file, bytes; only named in the message.
    max_body_bytes : int
        Largest body of any other request, bytes (default 64 KiB).
    upload_paths : tuple of str
        The upload endpoints (POST only).
    """

    def __init__(self, app, max_upload_body_bytes: int, max_upload_bytes: int,
                 max_body_bytes: int = MAX_BODY_BYTES, upload_paths: tuple[str, ...] = UPLOAD_PATHS):
        self.app, self.upload_paths = app, upload_paths
        self.max_upload_body_bytes, self.max_body_bytes = max_upload_body_bytes, max_body_bytes
        self.upload_message = f"The file is over the {format_size(max_upload_bytes)} limit."
        self.body_message = f"The request body is over the {format_size(max_body_bytes)} limit."

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"] in self.upload_paths
        limit = self.max_upload_body_bytes if upload else self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            if upload and not await _drain(receive):
                return
            await self._too_large(scope, upload)(scope, receive, send)
            return
        received = 0
        exceeded = started = False

        async def limited_receive():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message):
            nonlocal started
            if exceeded and not started:
                return  # the route's answer to a body cut short (FastAPI says 400): ours replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        if exceeded and not started:
            await self._too_large(scope, upload)(scope, receive, send)

    def _too_large(self, scope, upload: bool) -> Response:
        message = self.upload_message if upload else self.body_message
        if scope["path"].startswith("/api/"):
            return JSONResponse({"detail": message, "code": "too_large"}, status_code=413)
        back = "/upload" if upload else "/"
        return HTMLResponse(_TOO_LARGE_PAGE.format(message=message, back=back), status_code=413)


async def _drain(receive) -> bool:
    """Read and drop up to :data:`DRAIN_LIMIT_BYTES` of the body; False if the client went away."""
    drained = 0
    while drained <= DRAIN_LIMIT_BYTES:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        drained += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    return True
