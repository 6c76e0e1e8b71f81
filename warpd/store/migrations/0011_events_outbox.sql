-- Events for the rest of the platform (issue 14): every carrier receipt, MO,
-- SMS CDR (a message reaching its final state), voice CDR and ledger entry is
-- also a row of `outbox`, written by a trigger in the same statement, and so
-- in the same transaction, as the row it describes. warpd's publisher
-- (warpd/events/) sends the rows to RabbitMQ and deletes what the broker
-- confirmed: an event exists if and only if its row committed.
--
-- The triggers are statement-level over transition tables: one INSERT ...
-- SELECT per group commit or receipt batch, not a function call per row, and
-- nothing in Python on the hot path. They exist only while events are on
-- (events_switch, called by warpd at start from [events] amqp_url): a
-- transition table is filled for every row a statement touches even when the
-- trigger then does nothing, which cost the default configuration 15-40% on
-- receipts and final states in bench/storage.py. The payloads are version 1
-- of the schema in the README ("Events"); a change that is not an added field
-- is v2. They are json, not jsonb: built once as text and shipped as it is.

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    routing_key  text NOT NULL,
    payload      json NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION outbox_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (routing_key, payload)
    SELECT 'ledger.entry', json_build_object(
               'v', 1, 'id', n.id, 'account_id', n.account_id,
               'amount_micros', n.amount_micros, 'kind', n.kind,
               'message_id', n.message_id, 'call_id', n.call_id, 'note', n.note,
               'created_at', n.created_at)
      FROM inserted n ORDER BY n.id;
    RETURN NULL;
END $$;

CREATE FUNCTION outbox_mo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (routing_key, payload)
    SELECT 'sms.mo', json_build_object(
               'v', 1, 'id', n.id, 'account_id', n.account_id,
               'connector_id', n.connector_id, 'carrier_message_id', n.carrier_message_id,
               'mo_route_id', n.mo_route_id, 'source_addr', n.source_addr,
               'destination_addr', n.destination_addr, 'esm_class', n.esm_class,
               'data_coding', n.data_coding, 'body_b64', encode(n.body, 'base64'),
               'state', n.state, 'received_at', n.received_at)
      FROM inserted n;
    RETURN NULL;
END $$;

CREATE FUNCTION outbox_voice_cdr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (routing_key, payload)
    SELECT 'voice.cdr', json_build_object(
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
    RETURN NULL;
END $$;

-- A carrier receipt is a part leaving 'submitted'; a resubmission (the part
-- upserted back to 'submitted') is none.
CREATE FUNCTION outbox_receipt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (routing_key, payload)
    SELECT 'sms.receipt', json_build_object(
               'v', 1, 'message_id', n.message_id, 'part_no', n.part_no,
               'connector_id', n.connector_id,
               'carrier_message_id', n.carrier_message_id, 'state', n.state,
               'error_code', n.error_code, 'submitted_at', n.submitted_at,
               'done_at', n.done_at)
      FROM new_parts n
      JOIN old_parts o ON o.message_id = n.message_id AND o.part_no = n.part_no
     WHERE o.state = 'submitted' AND n.state <> 'submitted';
    RETURN NULL;
END $$;

-- The SMS CDR: a message whose done_at is set, once.
CREATE FUNCTION outbox_sms_cdr() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (routing_key, payload)
    SELECT 'sms.cdr', json_build_object(
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
    RETURN NULL;
END $$;

-- Events on or off: the triggers created or dropped (a no-op when already so).
-- DDL on the hot tables, so it waits at most lock_timeout for their writers.
CREATE FUNCTION events_switch(enabled boolean) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF enabled = EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'outbox_ledger'
                                                    AND tgrelid = 'ledger'::regclass) THEN
        RETURN false;
    END IF;
    IF enabled THEN
        CREATE TRIGGER outbox_ledger AFTER INSERT ON ledger
            REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_ledger();
        CREATE TRIGGER outbox_mo AFTER INSERT ON mo_messages
            REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_mo();
        CREATE TRIGGER outbox_voice_cdr AFTER INSERT ON voice_cdrs
            REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_voice_cdr();
        CREATE TRIGGER outbox_receipt AFTER UPDATE ON message_parts
            REFERENCING OLD TABLE AS old_parts NEW TABLE AS new_parts
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_receipt();
        CREATE TRIGGER outbox_sms_cdr AFTER UPDATE ON messages
            REFERENCING OLD TABLE AS old_messages NEW TABLE AS new_messages
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_sms_cdr();
    ELSE
        DROP TRIGGER outbox_ledger ON ledger;
        DROP TRIGGER outbox_mo ON mo_messages;
        DROP TRIGGER outbox_voice_cdr ON voice_cdrs;
        DROP TRIGGER outbox_receipt ON message_parts;
        DROP TRIGGER outbox_sms_cdr ON messages;
    END IF;
    RETURN true;
END $$;
