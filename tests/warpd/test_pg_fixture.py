import asyncpg


async def test_database_is_fresh_and_writable(database_dsn: str) -> None:
    conn = await asyncpg.connect(database_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname='public'") == 0
        await conn.execute("CREATE TABLE t (x int)")
    finally:
        await conn.close()
