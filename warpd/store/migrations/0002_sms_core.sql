-- The SMS core: what the v1 tables lacked once the acceptance path, the
-- dispatcher and receipts were written against them.

-- ---------------------------------------------------------------- balances per batch

-- v1 updated accounts once per ledger row: at thousands of messages per second
-- one busy account became a hot row locked once per message. A statement-level
-- trigger updates each account once per INSERT or COPY, so a group commit of N
-- charges costs one row update per account, and the balance still equals the
-- ledger's sum inside the same transaction.
DROP TRIGGER ledger_apply ON ledger;
DROP FUNCTION ledger_apply();

CREATE FUNCTION ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    overdrawn text;
BEGIN
    UPDATE accounts a
       SET balance_micros = a.balance_micros + s.total, updated_at = now()
      FROM (SELECT account_id, sum(amount_micros) AS total FROM inserted GROUP BY account_id) s
     WHERE a.id = s.account_id;
    -- SMS is charged before it is sent, so a charge may not take an account
    -- beyond its credit limit; the whole batch is refused and the caller
    -- retries it without the accounts named here. Voice is charged after the
    -- fact and adjustments are an operator's decision: neither is refused.
    SELECT string_agg(a.id::text, ',') INTO overdrawn
      FROM accounts a
      JOIN (SELECT account_id FROM inserted WHERE kind = 'sms_charge' GROUP BY account_id) c
        ON c.account_id = a.id
     WHERE a.balance_micros + a.credit_limit_micros < 0;
    IF overdrawn IS NOT NULL THEN
        RAISE EXCEPTION 'insufficient funds' USING ERRCODE = 'WP001', DETAIL = overdrawn;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_apply AFTER INSERT ON ledger
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_apply();

-- ---------------------------------------------------------------- hot tables

-- Every message writes a row in messages, message_parts and deliveries, and
-- each foreign key is a lookup per row: five on messages alone. The keys that
-- point at configuration (routes, connectors, users, keys, webhooks) go:
-- warpd writes ids it has just read from those tables, a CDR must outlive the
-- connector or route it names, and an operator may delete either. The keys
-- that carry money and ownership (account, the message a part or delivery
-- belongs to) stay.
ALTER TABLE messages
    DROP CONSTRAINT messages_api_key_id_fkey,
    DROP CONSTRAINT messages_route_id_fkey,
    DROP CONSTRAINT messages_connector_id_fkey,
    DROP CONSTRAINT messages_smpp_user_id_fkey;
ALTER TABLE message_parts DROP CONSTRAINT message_parts_connector_id_fkey;
ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_smpp_user_id_fkey,
    DROP CONSTRAINT deliveries_webhook_id_fkey;

-- ---------------------------------------------------------------- numbers

-- MCC/MNC by the longest matching prefix of an E.164 number (no '+').
CREATE TABLE number_prefixes (
    prefix   text PRIMARY KEY CHECK (prefix ~ '^[0-9]+$'),
    mcc_mnc  text NOT NULL CHECK (mcc_mnc ~ '^[0-9]{5,6}$'),
    country  char(2),
    network  text NOT NULL DEFAULT ''
);

-- STOP / START from a handset, per account: MT to an opted-out number is refused.
CREATE TABLE opt_outs (
    account_id  bigint NOT NULL REFERENCES accounts (id),
    msisdn      text NOT NULL CHECK (msisdn ~ '^[0-9]+$'),
    keyword     text NOT NULL DEFAULT 'STOP',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, msisdn)
);

-- ---------------------------------------------------------------- messages

ALTER TABLE messages
    -- An HTTP sender's per-message receipt URL.
    ADD COLUMN callback_url text CHECK (callback_url ~ '^https?://'),
    -- The position in the connector's candidate list (failover moves it on).
    ADD COLUMN candidate smallint NOT NULL DEFAULT 0;

-- Claiming work that no live instance holds: unclaimed or with a lapsed lease,
-- oldest first, so a backlog drains in order of acceptance. It replaces v1's
-- queue and in-flight indexes: every index on messages is paid for on each of
-- the row's state changes, thousands of times a second.
DROP INDEX messages_queue_idx;
DROP INDEX messages_in_flight_idx;
CREATE INDEX messages_claimable_idx ON messages (created_at) WHERE state = 'queued';
-- An instance renews and, after a restart, releases its own claims.
CREATE INDEX messages_claims_idx ON messages (claimed_by) WHERE state = 'queued';

-- A receipt that arrived before its submit_sm_resp was stored waits here for
-- its mapping rather than being lost; matched on every flush of new mappings.
CREATE TABLE pending_receipts (
    id                  bigserial PRIMARY KEY,
    connector_id        bigint NOT NULL REFERENCES connectors (id),
    carrier_message_id  text NOT NULL,
    payload             jsonb NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL
);
CREATE INDEX pending_receipts_carrier_idx ON pending_receipts (connector_id, carrier_message_id);

-- ---------------------------------------------------------------- deliveries

ALTER TABLE deliveries
    -- A per-message callback URL, when there is no webhook row behind it.
    ADD COLUMN url text CHECK (url ~ '^https?://'),
    -- Which instance is delivering it, until when (several warpd on one database).
    ADD COLUMN claimed_by text,
    ADD COLUMN claimed_until timestamptz,
    DROP CONSTRAINT deliveries_check3;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_webhook_target
    CHECK (via <> 'webhook' OR webhook_id IS NOT NULL OR url IS NOT NULL);
CREATE INDEX deliveries_smpp_pending_idx ON deliveries (smpp_user_id, id)
    WHERE state = 'pending' AND via = 'smpp';
CREATE INDEX deliveries_webhook_pending_idx ON deliveries (next_attempt_at)
    WHERE state = 'pending' AND via = 'webhook';
