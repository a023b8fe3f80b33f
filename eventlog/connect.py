"""Connections with the codecs the log needs: jsonb as Python objects, parsed with orjson."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

#: What "PostgreSQL is not there right now" looks like from asyncpg: refused or reset connections, a closed
#: pool connection after a restart, a server still starting or shutting down. Retried, never fatal.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    # Seen when the pool resets a connection the server just cut ("another operation is in progress"):
    # the connection is dead, the append is retried on another.
    asyncpg.InternalClientError,
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog", format="text")


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=init_connection)
    assert pool is not None
    return pool
