-- Charging on delivery: an account may pay only for messages that reach the
-- handset. Its messages are not charged at acceptance; their price is reserved
-- (set aside from what the account may spend) and, when the message is final,
-- turned into an 'sms_charge' if it was delivered or released if it failed or
-- expired. The ledger still holds only money that moved, so the ledger still
-- sums to balance_micros; what is reserved is the sum of the open reservations,
-- kept in reserved_micros by the trigger below in the same transaction.

ALTER TABLE accounts
    ADD COLUMN charge_mode text NOT NULL DEFAULT 'at_acceptance'
        CHECK (charge_mode IN ('at_acceptance', 'on_delivery')),
    ADD COLUMN reserved_micros bigint NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0);

-- One row per message accepted under 'on_delivery' and not yet final. Deleting
-- the row is the settlement: a DELETE ... RETURNING sees it once, so a
-- reservation is charged or released exactly once whatever retries.
CREATE TABLE sms_reservations (
    message_id     uuid PRIMARY KEY,
    account_id     bigint NOT NULL REFERENCES accounts (id),
    amount_micros  bigint NOT NULL CHECK (amount_micros > 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_reservations_account_idx ON sms_reservations (account_id);

-- Statement-level, like ledger_apply: a group commit of N reservations updates
-- each account once. New reservations may not take an account past its credit
-- limit; the batch is refused with the accounts named, as for charges (WP001).
CREATE FUNCTION sms_reservations_reserve() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    overdrawn text;
BEGIN
    UPDATE accounts a
       SET reserved_micros = a.reserved_micros + s.total, updated_at = now()
      FROM (SELECT account_id, sum(amount_micros) AS total FROM inserted GROUP BY account_id) s
     WHERE a.id = s.account_id;
    SELECT string_agg(a.id::text, ',') INTO overdrawn
      FROM accounts a
      JOIN (SELECT DISTINCT account_id FROM inserted) c ON c.account_id = a.id
     WHERE a.balance_micros + a.credit_limit_micros - a.reserved_micros < 0;
    IF overdrawn IS NOT NULL THEN
        RAISE EXCEPTION 'insufficient funds' USING ERRCODE = 'WP001', DETAIL = overdrawn;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sms_reservations_reserve AFTER INSERT ON sms_reservations
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION sms_reservations_reserve();

CREATE FUNCTION sms_reservations_settle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts a
       SET reserved_micros = a.reserved_micros - s.total, updated_at = now()
      FROM (SELECT account_id, sum(amount_micros) AS total FROM settled GROUP BY account_id) s
     WHERE a.id = s.account_id;
    RETURN NULL;
END $$;
CREATE TRIGGER sms_reservations_settle AFTER DELETE ON sms_reservations
    REFERENCING OLD TABLE AS settled
    FOR EACH STATEMENT EXECUTE FUNCTION sms_reservations_settle();

-- Reservations only come and go: an amount or owner never changes.
CREATE TRIGGER sms_reservations_no_update BEFORE UPDATE OR TRUNCATE ON sms_reservations
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- The ledger's credit check (0002) now counts what is reserved, and leaves out
-- the charge that settles a reservation (note 'on delivery'): that money was
-- set aside at acceptance, and a receipt must never be refused for it.
CREATE OR REPLACE FUNCTION ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    overdrawn text;
BEGIN
    UPDATE accounts a
       SET balance_micros = a.balance_micros + s.total, updated_at = now()
      FROM (SELECT account_id, sum(amount_micros) AS total FROM inserted GROUP BY account_id) s
     WHERE a.id = s.account_id;
    SELECT string_agg(a.id::text, ',') INTO overdrawn
      FROM accounts a
      JOIN (SELECT account_id FROM inserted WHERE kind = 'sms_charge' AND note <> 'on delivery'
             GROUP BY account_id) c
        ON c.account_id = a.id
     WHERE a.balance_micros + a.credit_limit_micros - a.reserved_micros < 0;
    IF overdrawn IS NOT NULL THEN
        RAISE EXCEPTION 'insufficient funds' USING ERRCODE = 'WP001', DETAIL = overdrawn;
    END IF;
    RETURN NULL;
END $$;
