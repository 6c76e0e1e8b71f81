-- GET /v1/events reads one account's final messages and its MO in time order,
-- from a cursor: these keep that a range scan however large the account is.
CREATE INDEX messages_done_idx ON messages (account_id, done_at, id) WHERE done_at IS NOT NULL;
CREATE INDEX mo_messages_stream_idx ON mo_messages (account_id, received_at, id);
