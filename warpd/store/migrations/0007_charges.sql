-- Seed-compatible POST /charges: one row per idempotency key, so a retried
-- charge answers what the first did instead of moving money twice. The money
-- itself moves by the ledger row this points at (kind 'adjustment').
CREATE TABLE charges (
    idempotency_key       text PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    account_id            bigint NOT NULL REFERENCES accounts (id),
    ledger_id             bigint NOT NULL UNIQUE REFERENCES ledger (id),
    amount_micros         bigint NOT NULL CHECK (amount_micros > 0),
    reason                text NOT NULL,
    balance_after_micros  bigint NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX charges_account_idx ON charges (account_id, created_at);
