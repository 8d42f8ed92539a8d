"""Alembic environment for vmgrade's packaged migrations.

At run time :func:`vmgrade.store.history.open_store` passes an open connection in
``config.attributes["connection"]``; from the alembic command line the URL
comes from the config's ``sqlalchemy.url`` (see docs/history.md).
"""

from __future__ import annotations

import importlib.util

from alembic import context
from sqlalchemy import create_engine, pool

from vmgrade.store.history import Base, default_db_url

# Tables of optional parts of the project register on Base when imported.
for _module in ("vmgrade.store.team",):
    try:
        if importlib.util.find_spec(_module) is not None:
            importlib.import_module(_module)
    except ImportError:
        pass

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs) -> None:
    # Batch mode lets ALTER work on SQLite (copy-and-move), a no-op elsewhere.
    context.configure(target_metadata=target_metadata, render_as_batch=True, compare_type=True, **kwargs)


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url") or default_db_url(),
               literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or default_db_url()
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
