"""Alembic environment: the engine comes from the caller (``workflow.store.tables.upgrade``) or from
settings (``BANGFU_DATABASE_URL``)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import workflow.store.tables  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from workflow.settings import get_settings

        engine = workflow.store.tables.make_engine(get_settings().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
