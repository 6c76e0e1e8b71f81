-- Voice: what the B2BUA needs beyond v1.

-- The caller-ID presented when a PBX sends one that is neither trusted nor one
-- of the account's DIDs (E.164 digits, no '+'); NULL passes the normalised one.
ALTER TABLE sip_trunks ADD COLUMN default_caller_id text
    CHECK (default_caller_id ~ '^[1-9][0-9]{5,14}$');

-- Calls in progress, so that a call still up when an instance dies is closed
-- with a CDR at the next start instead of being forgotten. A row is written
-- when a call is answered and removed with its CDR; ``alive_at`` is refreshed
-- for all of an instance's calls at once, and bounds what a crashed call is
-- charged for.
CREATE TABLE voice_active_calls (
    id             uuid PRIMARY KEY,
    instance       text NOT NULL,
    account_id     bigint REFERENCES accounts (id),
    trunk_id       bigint REFERENCES sip_trunks (id),
    cdr            jsonb NOT NULL,
    answer_at      timestamptz NOT NULL,
    alive_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_active_calls_instance_idx ON voice_active_calls (instance);
