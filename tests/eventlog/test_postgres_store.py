"""The event store contract against a real PostgreSQL, as the application role."""

from __future__ import annotations

import pytest

from eventlog import EventStore, PostgresEventStore
from tests.eventlog.contract import EventStoreContract


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _store(self, store: PostgresEventStore) -> None:
        self._the_store = store

    async def create_store(self) -> EventStore:
        return self._the_store
