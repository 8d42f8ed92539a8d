"""The app's routers: :mod:`.pages` (server-rendered HTML) and :mod:`.api` (JSON under /api)."""
