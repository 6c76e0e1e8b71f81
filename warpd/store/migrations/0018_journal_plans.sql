-- The journal's two inserts of a row per message (a part with its carrier id,
-- a receipt owed to the customer) spent most of their time planning foreign key
-- checks. Under the pool's force_custom_plan (warpd/store/database.py) the
-- check each row fires is planned afresh, and pg_stat_statements over 30,000
-- messages end to end put it at 1.84 s for the parts' key into messages (1.48
-- s of it planning) and 1.1 s for the deliveries' key into accounts (0.83 s
-- planning), of about 18 s in all.
--
-- message_parts -> messages: the key goes. warpd stores a part only for a
-- message it read or committed itself, messages are never deleted (a month goes
-- whole, its parts with it: warpd/store/partitions.py), and a check planned
-- once per batch takes the key's place: store_parts() inserts only the parts
-- whose message exists and raises foreign_key_violation, as the key did, when
-- one does not. The key's plan cannot simply be kept: the first check of a
-- month plans against a partition of a few rows, a sequential scan kept for
-- the connection's life while the month grows by thousands a second.
--
-- deliveries -> accounts: the key stays; its check is a lookup in a table of
-- customers, not of messages, so insert_deliveries() keeps its plans, as
-- accept_messages() does with the same key on messages and ledger (0017).

ALTER TABLE partitioned_tables ADD COLUMN parent_key boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN partitioned_tables.parent_key IS
    'Whether each partition of this child has a foreign key into its parent''s (migration 0018)';
UPDATE partitioned_tables SET parent_key = false WHERE table_name = 'message_parts';

DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN SELECT c.conrelid::regclass AS tbl, c.conname
                FROM pg_constraint c JOIN pg_inherits i ON i.inhrelid = c.conrelid
               WHERE c.contype = 'f' AND i.inhparent = 'message_parts'::regclass
                 AND c.confrelid IN (SELECT inhrelid FROM pg_inherits
                                      WHERE inhparent = 'messages'::regclass) LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION partition_create(root text, month date, from_minvalue boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    t partitioned_tables;
    kind text;
    lo text;
    hi text;
    suffix text := '_p' || to_char(month, 'YYYYMM');
    bound text;
    family text[];
BEGIN
    SELECT key_kind INTO kind FROM partitioned_tables WHERE table_name = root;
    IF kind IS NULL THEN
        RAISE EXCEPTION '% is not a partitioned root table', root;
    END IF;
    IF to_regclass(root || suffix) IS NOT NULL THEN
        RETURN false;
    END IF;
    lo := CASE WHEN from_minvalue THEN 'MINVALUE'
               ELSE quote_literal(partition_bound(kind, month)) END;
    hi := quote_literal(partition_bound(kind, month + interval '1 month'));
    -- children first, then the root
    SELECT array_agg(table_name ORDER BY parent_table IS NULL, table_name) INTO family
      FROM partitioned_tables WHERE table_name = root OR parent_table = root;
    FOREACH bound IN ARRAY family LOOP
        SELECT * INTO t FROM partitioned_tables WHERE table_name = bound;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                       ' INCLUDING STORAGE)', t.table_name || suffix, t.table_name);
        IF to_regclass(t.table_name || '_default') IS NOT NULL THEN
            EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I < %s%s RETURNING *)'
                           ' INSERT INTO %I SELECT * FROM moved',
                           t.table_name || '_default', t.key_column, hi,
                           CASE WHEN from_minvalue THEN ''
                                ELSE format(' AND %I >= %s', t.key_column, lo) END,
                           t.table_name || suffix);
        END IF;
    END LOOP;
    -- the root first: a child's key references the root's attached partition
    FOREACH bound IN ARRAY array(SELECT f FROM unnest(family) f ORDER BY f <> root) LOOP
        SELECT * INTO t FROM partitioned_tables WHERE table_name = bound;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       t.table_name, t.table_name || suffix, lo, hi);
        IF t.parent_table IS NOT NULL AND t.parent_key THEN
            EXECUTE format('ALTER TABLE %I ADD FOREIGN KEY (%I) REFERENCES %I (%I)'
                           ' ON DELETE CASCADE', t.table_name || suffix, t.key_column,
                           t.parent_table || suffix, t.parent_column);
        END IF;
    END LOOP;
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION partition_create_default(root text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t partitioned_tables;
BEGIN
    FOR t IN SELECT * FROM partitioned_tables WHERE table_name = root OR parent_table = root
              ORDER BY parent_table IS NOT NULL LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT',
                       t.table_name || '_default', t.table_name);
        IF t.parent_table IS NOT NULL AND t.parent_key THEN
            EXECUTE format('ALTER TABLE %I ADD FOREIGN KEY (%I) REFERENCES %I (%I)'
                           ' ON DELETE CASCADE', t.table_name || '_default', t.key_column,
                           t.parent_table || '_default', t.parent_column);
        END IF;
    END LOOP;
END $$;

-- A batch of submit responses: each part with its carrier id, and the messages
-- whose last part it was marked submitted. One round trip where there were two;
-- each statement is planned for its own arrays (EXECUTE), as the pool's
-- force_custom_plan plans the journal's others, and ``bound`` (the smallest
-- message id) keeps the look-up in messages to the months from it on.
CREATE FUNCTION store_parts(message_ids uuid[], part_nos int2[], connector_ids bigint[],
                            carrier_ids text[], last_ids uuid[], last_connectors bigint[],
                            last_attempts int[], bound uuid)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    stored bigint;
BEGIN
    EXECUTE 'INSERT INTO message_parts (message_id, part_no, connector_id, carrier_message_id)'
            ' SELECT p.* FROM unnest($1, $2, $3, $4) AS p(id, no, connector, carrier)'
            ' WHERE EXISTS (SELECT FROM messages m WHERE m.id = p.id AND m.id >= $5)'
            ' ON CONFLICT (message_id, part_no) DO UPDATE'
            ' SET connector_id = excluded.connector_id,'
            ' carrier_message_id = excluded.carrier_message_id, state = ''submitted'''
      USING message_ids, part_nos, connector_ids, carrier_ids, bound;
    GET DIAGNOSTICS stored = ROW_COUNT;
    IF stored < cardinality(message_ids) THEN
        RAISE EXCEPTION 'a part names a message that does not exist'
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF cardinality(last_ids) > 0 THEN
        EXECUTE 'UPDATE messages m SET state = ''submitted'', submitted_at = now(),'
                ' connector_id = s.connector, attempts = s.attempts'
                ' FROM unnest($1, $2, $3) AS s(id, connector, attempts)'
                ' WHERE m.id = s.id AND m.id >= $4 AND m.state = ''queued'''
          USING last_ids, last_connectors, last_attempts, bound;
    END IF;
END $$;

-- Deliveries owed (receipts, MO), in the journal's DELIVERY_COLUMNS order, and
-- the wake-ups of whoever sends the ones nobody here took: the webhook sender,
-- and the instances sweeping for customers bound elsewhere
-- (warpd/cluster/signals.py), notified on commit.
CREATE FUNCTION insert_deliveries(account_ids bigint[], kinds text[], message_ids uuid[],
                                  mo_ids uuid[], vias text[], smpp_user_ids bigint[],
                                  webhook_ids bigint[], urls text[], payloads jsonb[],
                                  expiries timestamptz[], claimers text[], leases timestamptz[])
RETURNS TABLE (id bigint, via text, smpp_user_id bigint, payload jsonb, claimed_by text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        INSERT INTO deliveries AS d (account_id, kind, message_id, mo_id, via, smpp_user_id,
                                     webhook_id, url, payload, expires_at, claimed_by,
                                     claimed_until)
        SELECT * FROM unnest(account_ids, kinds, message_ids, mo_ids, vias, smpp_user_ids,
                             webhook_ids, urls, payloads, expiries, claimers, leases)
        RETURNING d.id, d.via, d.smpp_user_id, d.payload, d.claimed_by;
    IF 'webhook' = ANY (vias) THEN
        PERFORM pg_notify('warpd_deliveries', '');
    END IF;
    IF EXISTS (SELECT FROM unnest(vias, claimers) AS n(v, c) WHERE n.v = 'smpp' AND n.c IS NULL)
    THEN
        PERFORM pg_notify('warpd_smpp_deliveries', '');
    END IF;
END $$;
ALTER FUNCTION insert_deliveries(bigint[], text[], uuid[], uuid[], text[], bigint[], bigint[],
                                 text[], jsonb[], timestamptz[], text[], timestamptz[])
    SET plan_cache_mode = auto;
