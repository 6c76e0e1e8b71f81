-- A group commit in one statement. The writer sent BEGIN, a COPY of messages,
-- a COPY of ledger rows (or of reservations), a read of the balances and
-- COMMIT: seven round trips, each of which waits for the warpd event loop to
-- come back to it, and under HTTP load a turn of the loop is milliseconds
-- (measured: 16 ms of a 37 ms commit went to BEGIN alone at 100 requests in
-- flight). One call of this function, outside a transaction block, is one
-- round trip and one transaction: the same rows, the same triggers (the
-- ledger's and the reservations' checks of the credit limit raise WP001 as
-- before), and the balances read after them.

-- One accepted message, in the writer's column order (warpd/sms/commit.py
-- MESSAGE_COLUMNS); the other columns of messages keep their defaults.
CREATE TYPE accepted_message AS (
    id                   uuid,
    account_id           bigint,
    channel              text,
    smpp_user_id         bigint,
    api_key_id           bigint,
    client_ref           text,
    source_addr          text,
    source_ton           smallint,
    source_npi           smallint,
    destination_addr     text,
    dest_ton             smallint,
    dest_npi             smallint,
    mcc_mnc              text,
    esm_class            smallint,
    data_coding          smallint,
    registered_delivery  smallint,
    body                 bytea,
    tlvs                 bytea,
    parts                smallint,
    route_id             bigint,
    connector_id         bigint,
    claimed_by           text,
    claimed_until        timestamptz,
    price_micros         bigint,
    currency             char(3),
    schedule_at          timestamptz,
    next_attempt_at      timestamptz,
    expires_at           timestamptz,
    callback_url         text,
    cost_micros          bigint
);

-- ``batch``'s messages, charged at once or, for the ids in ``reserved``
-- (accounts charged on delivery), reserved; answers what each account it
-- touched may still spend (balance_micros - reserved_micros).
CREATE FUNCTION accept_messages(batch accepted_message[], reserved uuid[])
RETURNS TABLE (account_id bigint, available bigint) LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO messages (
        id, account_id, channel, smpp_user_id, api_key_id, client_ref, source_addr,
        source_ton, source_npi, destination_addr, dest_ton, dest_npi, mcc_mnc, esm_class,
        data_coding, registered_delivery, body, tlvs, parts, route_id, connector_id,
        claimed_by, claimed_until, price_micros, currency, schedule_at, next_attempt_at,
        expires_at, callback_url, cost_micros)
    SELECT * FROM unnest(batch);
    -- Each INSERT fires its statement trigger even with no rows: skip the empty one.
    IF EXISTS (SELECT FROM unnest(batch) m WHERE m.price_micros > 0 AND m.id <> ALL (reserved))
    THEN
        INSERT INTO ledger (account_id, amount_micros, kind, message_id)
        SELECT m.account_id, -m.price_micros, 'sms_charge', m.id FROM unnest(batch) m
         WHERE m.price_micros > 0 AND m.id <> ALL (reserved);
    END IF;
    IF cardinality(reserved) > 0 THEN
        INSERT INTO sms_reservations (message_id, account_id, amount_micros)
        SELECT m.id, m.account_id, m.price_micros FROM unnest(batch) m
         WHERE m.price_micros > 0 AND m.id = ANY (reserved);
    END IF;
    RETURN QUERY
        SELECT a.id, a.balance_micros - a.reserved_micros FROM accounts a
         WHERE a.id IN (SELECT m.account_id FROM unnest(batch) m);
END $$;
