"""Alembic migrations of the registry schema (:mod:`xds.registry.schema`); run by
:func:`xds.registry.db.migrate` at start-up."""
