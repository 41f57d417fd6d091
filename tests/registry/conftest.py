"""Registry fixtures: every test runs on SQLite and on the PostgreSQL server of this machine.

One database per backend per test session (``xds_test_<random>`` on PostgreSQL, dropped at the
end), migrated once; each test starts from empty tables. Set ``XDS_TEST_NO_POSTGRES=1`` to run the
SQLite variant only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from xds.config import NodeConfig
from xds.registry.db import create_registry_engine, migrate
from xds.registry.schema import metadata
from xds.registry.store import RegistryStore

PG_ADMIN_URL = os.environ.get(
    "XDS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
NIST = SHARED / "corpus" / "nist-testkit"

PATIENT = "e2b9a4c1d3f4e5a^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO"
OTHER_PATIENT = "7c1fd2e3a4b5c6d^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO"
AFFINITY_DOMAIN = "1.3.6.1.4.1.21367.2005.13.20.1000"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                os.environ.get("XDS_TEST_NO_POSTGRES") == "1", reason="XDS_TEST_NO_POSTGRES=1"
            ),
        ],
    ),
]


def _postgres_database() -> Iterator[str]:
    name = f"xds_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('registry') / 'registry.sqlite'}"
    else:
        yield from _postgres_database()


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_registry_engine(db_url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: Engine) -> Iterator[RegistryStore]:
    """A store over empty tables."""
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)))
        else:
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))
    yield RegistryStore(engine)


def node_config(**registry: object) -> NodeConfig:
    cfg = NodeConfig()
    cfg.registry.patient_assigning_authority = AFFINITY_DOMAIN
    for key, value in registry.items():
        setattr(cfg.registry, key, value)
    return cfg


@pytest.fixture
def registry(store: RegistryStore):  # type: ignore[no-untyped-def]
    """A registry that knows PATIENT and OTHER_PATIENT from the identity feed."""
    from xds.registry import Registry

    store.record_patient(PATIENT, {"family": "ALPHA"}, "PAT_IDENTITY_X_REF_MGR_MISYS", "m1")
    store.record_patient(OTHER_PATIENT, {"family": "BETA"}, "PAT_IDENTITY_X_REF_MGR_MISYS", "m2")
    return Registry(store, node_config().registry)
