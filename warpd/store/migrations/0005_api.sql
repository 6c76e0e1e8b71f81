-- The HTTP surface (issue 9): API key limits, the admin audit log, idempotent
-- retries, one-time passwords and the secret that signs per-message callbacks.

-- ---------------------------------------------------------------- API keys

ALTER TABLE api_keys
    -- Shown in lists so an operator can tell keys apart; never the secret.
    ADD COLUMN name text NOT NULL DEFAULT '',
    -- Token bucket per key; NULL takes [api] default_rate_per_s / default_burst.
    ADD COLUMN rate_per_s numeric(10, 3) CHECK (rate_per_s > 0),
    ADD COLUMN burst integer CHECK (burst > 0);

-- ---------------------------------------------------------------- callbacks

-- A per-message callback URL has no webhook row and so no webhook secret: its
-- POSTs are signed with this per-account secret instead (GET /v1/webhooks
-- shows it). gen_random_uuid() draws from pg_strong_random(): two give 244
-- random bits.
ALTER TABLE accounts
    ADD COLUMN callback_secret text NOT NULL
        DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');

-- ---------------------------------------------------------------- audit

-- Every admin change: who (token or CLI user and address), what, when, and the
-- object before and after as JSON. Append-only, like the ledger.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    actor        text NOT NULL,
    action       text NOT NULL,
    object_type  text NOT NULL,
    object_id    text,
    before       jsonb,
    after        jsonb,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_object_idx ON audit_log (object_type, object_id, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- ---------------------------------------------------------------- idempotency

-- The first answer to (key, Idempotency-Key), replayed on retries. The request
-- digest catches a client reusing a key for a different request.
CREATE TABLE idempotency_keys (
    api_key_id      bigint NOT NULL REFERENCES api_keys (id),
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_sha256  bytea NOT NULL,
    status          smallint NOT NULL,
    response        jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_age_idx ON idempotency_keys (created_at);

-- ---------------------------------------------------------------- OTP

CREATE TABLE otp_templates (
    account_id    bigint PRIMARY KEY REFERENCES accounts (id),
    text          text NOT NULL DEFAULT 'Your code is {code}' CHECK (strpos(text, '{code}') > 0),
    source_addr   text NOT NULL DEFAULT 'VERIFY',
    code_length   smallint NOT NULL DEFAULT 6 CHECK (code_length BETWEEN 4 AND 10),
    lifetime_s    integer NOT NULL DEFAULT 300 CHECK (lifetime_s BETWEEN 30 AND 86400),
    max_attempts  smallint NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 10)
);

-- A code is stored as SHA-256 over (id, code): a leaked row does not give the
-- code, and the id in the hash stops one row's digest matching another's.
CREATE TABLE otp_codes (
    id            uuid PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (id),
    destination   text NOT NULL,
    code_sha256   bytea NOT NULL CHECK (length(code_sha256) = 32),
    message_id    uuid,
    attempts      smallint NOT NULL DEFAULT 0,
    max_attempts  smallint NOT NULL,
    expires_at    timestamptz NOT NULL,
    verified_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX otp_codes_account_idx ON otp_codes (account_id, created_at);
