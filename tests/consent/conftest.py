"""Consent tests run on SQLite and on PostgreSQL, over the registry tests' database fixtures."""

from __future__ import annotations

import pytest

from tests.consent.helpers import Province
from tests.registry.conftest import db_url, engine, store  # noqa: F401 - fixtures
from xds.consent import ConsentDirectives
from xds.registry.store import RegistryStore


@pytest.fixture
def consent(store: RegistryStore) -> ConsentDirectives:  # noqa: F811 - the imported fixture
    """Directives over emptied tables."""
    return ConsentDirectives(store.engine)


@pytest.fixture
def data(store: RegistryStore) -> Province:  # noqa: F811
    return Province(store)
