-- Several warpd instances on one database: who is alive, who holds which
-- carrier bind, and where each customer is bound. Every row here is a lease:
-- an instance that stops renewing loses it, and the others take over.

CREATE TABLE instances (
    instance_id   text PRIMARY KEY,
    host          text NOT NULL,
    pid           integer NOT NULL,
    version       text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    -- Past this, the instance counts as dead; its claims lapse at the same time.
    alive_until   timestamptz NOT NULL,
    -- Set by a clean stop, which also hands its work back at once.
    stopped_at    timestamptz
);

-- A connector's `binds` are global: slot 0..binds-1, each held by at most one
-- instance at a time, so three instances never open six binds to a carrier
-- that allows two (and each bind's TPS cap then holds in total).
CREATE TABLE connector_bind_leases (
    connector_id  bigint NOT NULL,
    slot          integer NOT NULL CHECK (slot >= 0),
    instance_id   text NOT NULL,
    leased_until  timestamptz NOT NULL,
    -- The bind holding the slot is bound and takes submits.
    up            boolean NOT NULL DEFAULT false,
    PRIMARY KEY (connector_id, slot)
);
CREATE INDEX connector_bind_leases_instance_idx ON connector_bind_leases (instance_id);

-- Customer binds per instance: the max_binds limit and the throughput of an
-- SMPP user hold in total over the instances it is bound to.
CREATE TABLE customer_binds (
    instance_id   text NOT NULL,
    smpp_user_id  bigint NOT NULL,
    binds         integer NOT NULL CHECK (binds >= 0),
    receivers     integer NOT NULL CHECK (receivers >= 0),
    leased_until  timestamptz NOT NULL,
    PRIMARY KEY (instance_id, smpp_user_id)
);
