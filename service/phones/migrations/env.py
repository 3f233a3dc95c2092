"""Alembic's environment: the service passes its own connection; the CLI builds one from
DUNSCAN_DATABASE_URL (or the default SQLite file)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from service.phones.store import Base, database_url

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:  # from service.phones.store.migrate: already in its transaction
        context.configure(connection=connection, target_metadata=target_metadata)
        context.run_migrations()
        return
    engine = create_engine(database_url())
    with engine.begin() as own:
        context.configure(connection=own, target_metadata=target_metadata)
        context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
