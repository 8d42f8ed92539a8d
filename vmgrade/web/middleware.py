"""The app's own middleware: security headers, the request gate (login before an upload's body,
per-user upload limits, body timeouts) and request body size limits.

Session cookies come from Starlette's ``SessionMiddleware`` (registered in :mod:`vmgrade.web.app`).
"""

from __future__ import annotations

import time
from urllib.parse import quote

import anyio
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .deps import csrf_matches, session_still_valid
from .limits import InFlight, Limits
from .storage import format_size

APP_CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; "
           "script-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'")
UPLOAD_PATHS = ("/upload", "/api/uploads")
# GETs that render or compare several reports (seconds of CPU each): limited per user like uploads.
EXPENSIVE_PATHS = ("/compare", "/api/compare")
# Cheap and needed by every visitor's login page: never counted as anonymous requests.
FREE_PREFIXES = ("/static/", "/api/docs-assets/")
WAIT_POLL_S = 0.05  # how often a waiting upload looks for a free place
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the context fields around the file
MAX_BODY_BYTES = 64 * 1024  # every other request body (logins, forms, JSON): far above any real one
# Read (and drop) up to this much of a logged-in user's oversized upload, for at most this
# long, so browsers show the 413 and not a reset. Anonymous bodies are never read.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
DRAIN_TIMEOUT_S = 10.0
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
    """Read and drop up to :data:`DRAIN_LIMIT_BYTES` of the body, for up to :data:`DRAIN_TIMEOUT_S`;
    False if the client went away."""
    drained = 0
    with anyio.move_on_after(DRAIN_TIMEOUT_S):
        while drained <= DRAIN_LIMIT_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            drained += len(message.get("body", b""))
            if not message.get("more_body"):
                break
    return True


class BodyTimeout(Exception):
    """The client sent no body data for too long (or the whole body took too long)."""


def _error(scope, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """A JSON ``{"detail", "code"}`` under /api/, else a small page; the connection is closed after it."""
    headers = {"Connection": "close", **(headers or {})}  # the body may be unread: no keep-alive
    if scope["path"].startswith("/api/"):
        return JSONResponse({"detail": message, "code": code}, status_code=status, headers=headers)
    back = "/upload" if scope["path"] in UPLOAD_PATHS else "/"
    return HTMLResponse(_TOO_LARGE_PAGE.replace("Too large", "Refused").format(message=message, back=back),
                        status_code=status, headers=headers)


class RequestGate:
    """Admit requests before their body is read (pure ASGI; inside the session middleware).

    * An upload (POST to ``upload_paths``) needs a valid session of an active user, and
      under /api/ the ``X-CSRF-Token`` header, checked *before* a byte of its body is read
      or spooled: anonymous API calls get 401 ``not_logged_in``, pages a redirect to
      /login, both with ``Connection: close``.
    * At most ``limits.uploads_in_flight_per_user`` uploads (and as many comparisons) of one
      user at once; ``limits.uploads_waiting_per_user`` more wait for a place (their bodies
      unread) up to ``limits.upload_wait_s``; the rest are answered 429 ``too_many_requests``
      (an upload's body is drained first, bounded as for a 413, and never stored).
    * Requests without a logged-in session (static files aside) are counted per client address
      and in all: past ``limits.anonymous_in_flight_per_address`` or ``limits.anonymous_in_flight``
      in progress they are answered 429 ``too_many_requests`` before any work, so a login flood
      never queues ahead of logged-in users.
    * Every request body must keep coming: no data for ``limits.body_idle_timeout_s``, or a
      body taking longer than ``limits.body_total_timeout_s``, is answered 408
      ``body_timeout`` and whatever was spooled of it is dropped.

    Parameters
    ----------
    app : ASGI app
    limits : Limits
    upload_paths : tuple of str
    """

    def __init__(self, app, limits: Limits, upload_paths: tuple[str, ...] = UPLOAD_PATHS):
        self.app, self.limits, self.upload_paths = app, limits, upload_paths
        self.in_flight = InFlight(limits.uploads_in_flight_per_user)
        self.waiting = InFlight(limits.uploads_waiting_per_user)
        self.anonymous = InFlight(limits.anonymous_in_flight_per_address)
        self.anonymous_all = InFlight(limits.anonymous_in_flight)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"] in self.upload_paths
        if not upload and not isinstance((scope.get("session") or {}).get("uid"), int) \
                and not scope["path"].startswith(FREE_PREFIXES):
            await self._anonymous(scope, receive, send)  # (an anonymous upload is refused below)
            return
        key = None
        if upload:
            refusal, key = await self._admit_upload(scope)
            if refusal is not None:
                if refusal.status_code == 429 and not await _drain(receive):
                    return  # a logged-in user's extra upload: read and dropped (bounded), so it sees the 429
                await refusal(scope, receive, send)
                return
        elif scope["method"] == "GET" and scope["path"] in EXPENSIVE_PATHS:
            uid = (scope.get("session") or {}).get("uid")
            if isinstance(uid, int):  # else the route answers (login page or 401)
                key = (uid, "expensive")
                if not await self._enter(key):
                    await self._too_many(scope)(scope, receive, send)
                    return
        try:
            await self._timed(scope, receive, send)
        finally:
            if key is not None:
                self.in_flight.leave(key)

    async def _anonymous(self, scope, receive, send):
        """A request without a logged-in session: admitted within the anonymous limits, else 429."""
        address = (scope.get("client") or ("unknown",))[0]
        if not self.anonymous.enter(address):
            await self._too_many_anonymous(scope)(scope, receive, send)
            return
        try:
            if not self.anonymous_all.enter(None):
                await self._too_many_anonymous(scope)(scope, receive, send)
                return
            try:
                await self._timed(scope, receive, send)
            finally:
                self.anonymous_all.leave(None)
        finally:
            self.anonymous.leave(address)

    @staticmethod
    def _too_many_anonymous(scope) -> Response:
        return _error(scope, 429, "too_many_requests",
                      "Too many requests without a login are in progress; retry in a moment.",
                      {"Retry-After": "2"})

    async def _admit_upload(self, scope) -> tuple[Response | None, tuple | None]:
        session = scope.get("session") or {}
        uid, api = session.get("uid"), scope["path"].startswith("/api/")
        valid = isinstance(uid, int) and await anyio.to_thread.run_sync(
            session_still_valid, scope["app"].state, uid, session.get("sv"))
        if valid is None:
            return _error(scope, 503, "busy", "The server is busy; retry in a few seconds.",
                          {"Retry-After": "5"}), None
        if not valid:
            if api:
                return _error(scope, 401, "not_logged_in", "not logged in: POST /api/login first",
                              {"WWW-Authenticate": 'Cookie realm="vmgrade"'}), None
            return RedirectResponse(f"/login?next={quote(scope['path'])}", status_code=303,
                                    headers={"Connection": "close"}), None
        token = dict(scope["headers"]).get(b"x-csrf-token", b"").decode("latin-1")
        if api and not csrf_matches(session, token):
            return _error(scope, 403, "csrf_failed",
                          "missing or wrong X-CSRF-Token header (GET /api/csrf)"), None
        key = (uid, "upload")
        if not await self._enter(key):
            return self._too_many(scope), None
        return None, key

    async def _enter(self, key) -> bool:
        """Take one of ``key``'s places in flight, waiting (without reading the body) if there is room to."""
        if self.in_flight.enter(key):
            return True
        if not self.waiting.enter(key):
            return False
        try:
            with anyio.move_on_after(self.limits.upload_wait_s):
                while True:
                    await anyio.sleep(WAIT_POLL_S)
                    if self.in_flight.enter(key):
                        return True
            return False
        finally:
            self.waiting.leave(key)

    def _too_many(self, scope) -> Response:
        limit = self.limits.uploads_in_flight_per_user
        return _error(scope, 429, "too_many_requests",
                      f"You already have {limit} such requests in progress; wait for them to finish.",
                      {"Retry-After": "2"})

    async def _timed(self, scope, receive, send):
        idle_s, total_s = self.limits.body_idle_timeout_s, self.limits.body_total_timeout_s
        deadline = time.monotonic() + total_s
        body_done = timed_out = started = False

        async def timed_receive():
            nonlocal body_done, timed_out
            if body_done:
                return await receive()  # e.g. a streaming response listening for a disconnect
            wait_s = min(idle_s, deadline - time.monotonic())
            try:
                if wait_s <= 0:
                    raise TimeoutError
                with anyio.fail_after(wait_s):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise BodyTimeout() from None
            if message["type"] != "http.request" or not message.get("more_body"):
                body_done = True
            return message

        async def guarded_send(message):
            nonlocal started
            if timed_out and not started:
                return  # the route's answer to a body cut short: ours replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except BodyTimeout:
            pass
        if timed_out and not started:
            message = (f"The request body stopped arriving (nothing for {idle_s:g} s, or over "
                       f"{total_s:g} s in all); send it again.")
            await _error(scope, 408, "body_timeout", message)(scope, receive, send)
