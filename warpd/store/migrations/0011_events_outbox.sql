-- Events for the rest of the platform (issue 14): every carrier receipt, MO,
-- SMS CDR (a message reaching its final state), voice CDR and ledger entry is
-- also a row of `outbox`, written by a trigger in the same statement, and so
-- in the same transaction, as the row it describes. warpd's publisher
-- (warpd/events/) sends the rows to RabbitMQ and deletes what the broker
-- confirmed: an event exists if and only if its row committed.
--
-- The triggers are statement-level over transition tables: one INSERT ...
-- SELECT per group commit or receipt batch, not a function call per row, and
-- nothing in Python on the hot path. The payloads are version 1 of the schema
-- in the README ("Events"); a change that is not an added field is v2.

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row: whether events are wanted. warpd sets it at start from
-- [events] amqp_url, so a platform without RabbitMQ keeps an empty outbox.
CREATE TABLE events_settings (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    enabled    boolean NOT NULL DEFAULT false
);
INSERT INTO events_settings DEFAULT VALUES;

CREATE FUNCTION events_enabled() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT enabled FROM events_settings
$$;

CREATE FUNCTION outbox_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF events_enabled() THEN
        INSERT INTO outbox (routing_key, payload)
        SELECT 'ledger.entry', jsonb_build_object(
                   'v', 1, 'id', n.id, 'account_id', n.account_id,
                   'amount_micros', n.amount_micros, 'kind', n.kind,
                   'message_id', n.message_id, 'call_id', n.call_id, 'note', n.note,
                   'created_at', n.created_at)
          FROM inserted n ORDER BY n.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_ledger AFTER INSERT ON ledger
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_ledger();

CREATE FUNCTION outbox_mo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF events_enabled() THEN
        INSERT INTO outbox (routing_key, payload)
        SELECT 'sms.mo', jsonb_build_object(
                   'v', 1, 'id', n.id, 'account_id', n.account_id,
                   'connector_id', n.connector_id, 'carrier_message_id', n.carrier_message_id,
                   'mo_route_id', n.mo_route_id, 'source_addr', n.source_addr,
                   'destination_addr', n.destination_addr, 'esm_class', n.esm_class,
                   'data_coding', n.data_coding, 'body_b64', encode(n.body, 'base64'),
                   'state', n.state, 'received_at', n.received_at)
          FROM inserted n;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_mo AFTER INSERT ON mo_messages
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_mo();

CREATE FUNCTION outbox_voice_cdr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF events_enabled() THEN
        INSERT INTO outbox (routing_key, payload)
        SELECT 'voice.cdr', jsonb_build_object(
                   'v', 1, 'id', n.id, 'account_id', n.account_id, 'trunk_id', n.trunk_id,
                   'direction', n.direction, 'call_id_a', n.call_id_a, 'call_id_b', n.call_id_b,
                   'src_e164', n.src_e164, 'dst_e164', n.dst_e164, 'route_id', n.route_id,
                   'gateway_id', n.gateway_id, 'attempts', n.attempts,
                   'start_at', n.start_at, 'ring_at', n.ring_at, 'answer_at', n.answer_at,
                   'end_at', n.end_at, 'duration_ms', n.duration_ms, 'billsec', n.billsec,
                   'disposition', n.disposition, 'sip_code', n.sip_code,
                   'q850_cause', n.q850_cause, 'hangup_by', n.hangup_by,
                   'price_micros', n.price_micros, 'cost_micros', n.cost_micros,
                   'currency', n.currency, 'mos_avg_x10', n.mos_avg_x10)
          FROM inserted n;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_voice_cdr AFTER INSERT ON voice_cdrs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_voice_cdr();

-- A carrier receipt is a part leaving 'submitted'; a resubmission (the part
-- upserted back to 'submitted') is none.
CREATE FUNCTION outbox_receipt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF events_enabled() THEN
        INSERT INTO outbox (routing_key, payload)
        SELECT 'sms.receipt', jsonb_build_object(
                   'v', 1, 'message_id', n.message_id, 'part_no', n.part_no,
                   'account_id', m.account_id, 'connector_id', n.connector_id,
                   'carrier_message_id', n.carrier_message_id, 'state', n.state,
                   'error_code', n.error_code, 'submitted_at', n.submitted_at,
                   'done_at', n.done_at)
          FROM new_parts n
          JOIN old_parts o ON o.message_id = n.message_id AND o.part_no = n.part_no
          JOIN messages m ON m.id = n.message_id
         WHERE o.state = 'submitted' AND n.state <> 'submitted';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_receipt AFTER UPDATE ON message_parts
    REFERENCING OLD TABLE AS old_parts NEW TABLE AS new_parts
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_receipt();

-- The SMS CDR: a message whose done_at is set, once.
CREATE FUNCTION outbox_sms_cdr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF events_enabled() THEN
        INSERT INTO outbox (routing_key, payload)
        SELECT 'sms.cdr', jsonb_build_object(
                   'v', 1, 'id', n.id, 'account_id', n.account_id, 'channel', n.channel,
                   'smpp_user_id', n.smpp_user_id, 'api_key_id', n.api_key_id,
                   'client_ref', n.client_ref, 'source_addr', n.source_addr,
                   'destination_addr', n.destination_addr, 'mcc_mnc', n.mcc_mnc,
                   'parts', n.parts, 'state', n.state, 'route_id', n.route_id,
                   'connector_id', n.connector_id, 'attempts', n.attempts,
                   'price_micros', n.price_micros, 'cost_micros', n.cost_micros,
                   'currency', n.currency, 'error_code', n.error_code,
                   'created_at', n.created_at, 'submitted_at', n.submitted_at,
                   'done_at', n.done_at)
          FROM new_messages n
          JOIN old_messages o ON o.id = n.id
         WHERE o.done_at IS NULL AND n.done_at IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_sms_cdr AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_messages NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_sms_cdr();
