"""PostgreSQL: the pool, migrations, the embedded cluster and (later) batched writers."""

from warpd.store.database import Database
from warpd.store.embedded import EmbeddedPostgres

__all__ = ["Database", "EmbeddedPostgres"]
