"""The web app: reps upload or record practice voicemails, trainers review them.

``vmgrade serve`` runs :func:`vmgrade.web.app.create_app` under uvicorn. Grading
happens in worker threads (``jobs``), in the server or in ``vmgrade worker`` processes
(``worker``), that claim jobs from the ``web_jobs`` table under a lease and grade each in a
child process (``grading``); requests only store, queue and show.

Layout: ``app`` assembles the app; ``routes/pages`` and ``routes/api`` are its routers,
``deps`` their dependencies, ``schemas`` the API's models, ``recordings`` what they do with
uploads, ``middleware`` the security headers and body size limits; ``accounts``, ``storage``,
``jobs`` (the worker), ``grading`` (its child process), ``worker`` (``vmgrade worker``) and
``dashboard`` (team numbers and charts) sit below. The tables are
:mod:`vmgrade.store.team`, the file store :mod:`vmgrade.store.blobs`.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args, **kwargs):
    """See :func:`vmgrade.web.app.create_app` (imported lazily: FastAPI is an extra)."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)
