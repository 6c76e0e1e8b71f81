-- The web consoles: their users, their sessions, and test events for webhooks.

-- A console user is an operator (no account) or a customer's (one account).
-- Passwords are warpd.auth.passwords' scrypt strings; failed_logins and
-- locked_until carry the lockout across restarts and instances.
CREATE TABLE console_users (
    id             bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._@-]{1,64}$'),
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('operator_admin', 'operator_readonly',
                                                 'customer_admin', 'customer_developer')),
    account_id     bigint REFERENCES accounts (id),
    enabled        boolean NOT NULL DEFAULT true,
    failed_logins  integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz,
    CHECK ((role LIKE 'customer_%') = (account_id IS NOT NULL))
);

-- A session is known by the SHA-256 of its cookie, so a leaked table opens nothing.
CREATE TABLE console_sessions (
    token_sha256  bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    user_id       bigint NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);

-- "Send a test event" from the portal: a delivery to a webhook about no message.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_kind_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_kind_check
    CHECK (kind IN ('dlr', 'mo', 'test'));
