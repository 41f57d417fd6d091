"""Alembic environment of the registry. Run through :func:`xds.registry.db.migrate`, which hands
over an open connection in ``config.attributes["connection"]``; with a ``sqlalchemy.url`` main
option instead (the ``alembic`` command line), it opens its own."""

from __future__ import annotations

from alembic import context

from xds.registry.schema import metadata

config = context.config


def _configure_and_run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    from xds.registry.db import create_registry_engine

    engine = create_registry_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect().execution_options(xds_write=True) as conn:
            _configure_and_run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
