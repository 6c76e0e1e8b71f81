"""Several warpd instances on one PostgreSQL: membership, leases and wake-ups."""
