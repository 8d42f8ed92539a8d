"""How ``vmgrade serve`` runs the app under uvicorn: connection limits that a slow client cannot exhaust.

uvicorn answers 503 to everyone once ``limit_concurrency`` connections are open, counting
connections whose request headers never finish, and it times out only idle keep-alive
connections: 200 sockets each sending half a request line held the server for everyone (a
"slowloris"). The protocol here closes a connection whose request headers take longer than
:data:`HEADER_TIMEOUT_S`, and refuses more than :data:`MAX_CONNECTIONS_PER_PEER` open
connections from one address (a reverse proxy named with ``--forwarded-allow-ips`` is exempt:
it multiplexes every client, and buffers slow ones itself).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

# The request line and headers must arrive within this (a browser sends them in one packet;
# a phone on a bad link in well under a second).
HEADER_TIMEOUT_S = 10.0
# Connections one address may hold open at once: a browser opens 6 per host, a few tabs more.
MAX_CONNECTIONS_PER_PEER = 20
# uvicorn's own limits (passed to uvicorn.Config): idle keep-alive, the largest header block,
# connections in all (503 beyond), and the wait for requests in progress at shutdown.
UVICORN_LIMITS = dict(timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024,
                      limit_concurrency=200, timeout_graceful_shutdown=30)


def guarded_protocol(trusted: tuple[str, ...] = (), header_timeout_s: float = HEADER_TIMEOUT_S,
                     max_per_peer: int = MAX_CONNECTIONS_PER_PEER) -> type[H11Protocol]:
    """An h11 protocol class with a header timeout and a per-address connection limit.

    Parameters
    ----------
    trusted : tuple of str
        Peer addresses exempt from the per-address limit (the reverse proxies).
    header_timeout_s : float
        Longest time from a connection's start (or its previous response) to a complete
        request head, seconds.
    max_per_peer : int
        Open connections one address may hold; more are closed at once.
    """
    open_by_peer: Counter[str] = Counter()

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _peer: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peer = self.client[0] if self.client else None
            if peer is not None and peer not in trusted and "*" not in trusted:
                if open_by_peer[peer] >= max_per_peer:
                    transport.close()  # before a byte is read: no cycle, nothing to answer
                    return
                open_by_peer[peer] += 1
                self._peer = peer
            self._start_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            if self._peer is not None:
                open_by_peer[self._peer] -= 1
                if open_by_peer[self._peer] <= 0:
                    del open_by_peer[self._peer]
                self._peer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            before = self.cycle
            super().data_received(data)
            if self.cycle is not before:  # a request's head is complete: its body has its own timeouts
                self._stop_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._start_header_timer()  # the next request on this connection gets the same bound

        def _start_header_timer(self) -> None:
            self._stop_header_timer()
            self._header_timer = self.loop.call_later(header_timeout_s, self._header_timed_out)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timed_out(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self.transport.close()

    return GuardedH11Protocol


def server_config(app: Any, host: str, port: int, *, trusted: str = "", log_level: str = "info",
                  **overrides: Any):
    """The ``uvicorn.Config`` of ``vmgrade serve``: the guarded protocol and :data:`UVICORN_LIMITS`.

    ``trusted`` is ``--forwarded-allow-ips`` (comma-separated addresses, or ``*``): their
    ``X-Forwarded-For`` is believed, and they are exempt from the per-address limit.
    """
    import uvicorn

    proxies = tuple(a.strip() for a in trusted.split(",") if a.strip())
    settings = {**UVICORN_LIMITS, **overrides}
    protocol = guarded_protocol(proxies, settings.pop("header_timeout_s", HEADER_TIMEOUT_S),
                                settings.pop("max_per_peer", MAX_CONNECTIONS_PER_PEER))
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, http=protocol,
                          proxy_headers=bool(proxies), forwarded_allow_ips=trusted, **settings)
