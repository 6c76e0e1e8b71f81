-- Data growth (issue 14): the tables that take a row per message, part, receipt
-- delivery and call become PostgreSQL range-partitioned by month, so a year of
-- a million messages a day is twelve partitions of 30 M rows each, and
-- retention is a DROP of a whole partition instead of a DELETE that bloats.
--
-- Each table is partitioned on a key that already carries the time, so the
-- lookups warpd makes by id keep their primary key and prune to one partition:
--   messages          id          UUIDv7: its first 48 bits are Unix milliseconds
--   message_parts     message_id  the same bounds, so a message and its parts
--                                 are always in partitions of the same month
--   deliveries        id          a bigint whose high bits are milliseconds (below)
--   webhook_attempts  delivery_id the same bounds as deliveries
--   mo_messages       received_at its ids are UUIDv4: no time in them
--   voice_cdrs        start_at    likewise
-- Every table has a DEFAULT partition, so an insert never fails for want of a
-- partition; warpd creates the months ahead (partition_create below) and moves
-- any rows a missing month left in DEFAULT when it creates that month.
--
-- Foreign keys between two partitioned tables are kept partition to partition
-- (message_parts_pYYYYMM -> messages_pYYYYMM): a key on the parents would make
-- every DETACH of a messages month scan all of message_parts under an ACCESS
-- EXCLUSIVE lock on messages (2 s per million rows here), and a receipt's
-- delivery, made weeks after its message, would block the message's month from
-- going at all. So deliveries no longer reference messages or mo_messages
-- (their account key stays), and retention drops a month's deliveries with it.

-- ---------------------------------------------------------------- the catalogue

-- Which tables are partitioned, on what, and what retention must respect.
CREATE TABLE partitioned_tables (
    table_name     text PRIMARY KEY,
    key_column     text NOT NULL,
    key_kind       text NOT NULL CHECK (key_kind IN ('uuid7', 'snowflake', 'time')),
    -- A child shares its parent's bounds; its key references the parent's.
    parent_table   text REFERENCES partitioned_tables (table_name),
    parent_column  text,
    -- Rows in DEFAULT older than retention go by this column.
    age_column     text NOT NULL,
    -- Rows still owed work: a month holding one is not retired.
    live_rows      text,
    CHECK ((parent_table IS NULL) = (parent_column IS NULL))
);
INSERT INTO partitioned_tables VALUES
    ('messages', 'id', 'uuid7', NULL, NULL, 'created_at', $$state = 'queued'$$),
    ('message_parts', 'message_id', 'uuid7', 'messages', 'id', 'submitted_at', NULL),
    ('deliveries', 'id', 'snowflake', NULL, NULL, 'created_at', $$state = 'pending'$$),
    ('webhook_attempts', 'delivery_id', 'snowflake', 'deliveries', 'id', 'attempted_at', NULL),
    ('mo_messages', 'received_at', 'time', NULL, NULL, 'received_at', NULL),
    ('voice_cdrs', 'start_at', 'time', NULL, NULL, 'start_at', NULL);

-- The smallest key of the given kind at a moment: a partition bound.
CREATE FUNCTION partition_bound(kind text, at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE kind
        WHEN 'uuid7' THEN (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0')
                           || '00000000000000000000')::uuid::text
        WHEN 'snowflake' THEN (floor(extract(epoch FROM at) * 1000)::bigint << 20)::text
        WHEN 'time' THEN to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'
    END
$$;

-- deliveries.id: milliseconds since the epoch in the high 43 bits, a sequence
-- in the low 20 (a million a millisecond before two could meet), so the ids
-- still grow with time, stay bigint for the code and the X-Warpd-Delivery
-- header, and say which month's partition holds them.
CREATE FUNCTION snowflake_id(seq regclass) RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 20)
           | (nextval(seq) & 1048575)
$$;

-- Create one month's partition of a root table and of its children (no-op
-- when it exists). Rows of that month already in DEFAULT (warpd was down
-- longer than its months ahead) move into it, children before their parents
-- so the DEFAULT-to-DEFAULT cascade deletes nothing. The tables are built
-- apart and attached, which takes SHARE UPDATE EXCLUSIVE on the parent: the
-- writers of the current month go on.
CREATE FUNCTION partition_create(root text, month date, from_minvalue boolean DEFAULT false)
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
        IF t.parent_table IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I ADD FOREIGN KEY (%I) REFERENCES %I (%I)'
                           ' ON DELETE CASCADE', t.table_name || suffix, t.key_column,
                           t.parent_table || suffix, t.parent_column);
        END IF;
    END LOOP;
    RETURN true;
END $$;

-- The DEFAULT partitions of a root and its children.
CREATE FUNCTION partition_create_default(root text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t partitioned_tables;
BEGIN
    FOR t IN SELECT * FROM partitioned_tables WHERE table_name = root OR parent_table = root
              ORDER BY parent_table IS NOT NULL LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT',
                       t.table_name || '_default', t.table_name);
        IF t.parent_table IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I ADD FOREIGN KEY (%I) REFERENCES %I (%I)'
                           ' ON DELETE CASCADE', t.table_name || '_default', t.key_column,
                           t.parent_table || '_default', t.parent_column);
        END IF;
    END LOOP;
END $$;

-- ---------------------------------------------------------------- client references

-- A unique index on a partitioned table must contain the partition key, so
-- (account_id, client_ref) can no longer be unique on messages itself. It is
-- kept here instead, filled in the same statement that inserts the message: a
-- repeated reference still fails the insert with unique_violation (the group
-- commit answers it "duplicate"). The row trigger fires only for messages that
-- carry a reference; SMPP's never do.
CREATE TABLE message_client_refs (
    account_id  bigint NOT NULL,
    client_ref  text NOT NULL,
    message_id  uuid NOT NULL,
    PRIMARY KEY (account_id, client_ref)
);
CREATE INDEX message_client_refs_message_idx ON message_client_refs (message_id);
INSERT INTO message_client_refs
    SELECT account_id, client_ref, id FROM messages WHERE client_ref IS NOT NULL;

CREATE FUNCTION message_client_ref() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_client_refs VALUES (NEW.account_id, NEW.client_ref, NEW.id);
    RETURN NULL;
END $$;

-- ---------------------------------------------------------------- conversion

-- Keys between the tables being converted; the partition-wise ones replace
-- the first two, the others go (see the top).
ALTER TABLE message_parts DROP CONSTRAINT message_parts_message_id_fkey;
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_delivery_id_fkey;
ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_message_id_fkey,
    DROP CONSTRAINT deliveries_mo_id_fkey;
DROP INDEX messages_client_ref_idx;

-- Rename a table to <name>_old and build the partitioned one in its place,
-- with its columns, defaults, checks and primary key (which must now hold the
-- partition key); the caller copies the rows, then convert_finish rebuilds the
-- other indexes and the foreign keys the old one had.
CREATE FUNCTION pg_temp.convert_start(tbl text, primary_key text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t partitioned_tables;
    others integer;
BEGIN
    SELECT * INTO t FROM partitioned_tables WHERE table_name = tbl;
    SELECT count(*) INTO others FROM pg_trigger WHERE tgrelid = tbl::regclass AND NOT tgisinternal;
    IF others > 0 THEN
        RAISE EXCEPTION 'migration 0010 does not know the triggers on %', tbl;
    END IF;
    SELECT count(*) INTO others FROM pg_constraint
     WHERE contype = 'f' AND confrelid = tbl::regclass;
    IF others > 0 THEN
        RAISE EXCEPTION 'migration 0010 does not know the foreign keys into %', tbl;
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS converted_defs (tbl text, kind text, def text);
    INSERT INTO converted_defs
        SELECT tbl, 'index', pg_get_indexdef(i.indexrelid)
          FROM pg_index i WHERE i.indrelid = tbl::regclass AND NOT i.indisprimary;
    INSERT INTO converted_defs
        SELECT tbl, 'fkey', format('ALTER TABLE %I ADD CONSTRAINT %I %s', tbl, c.conname,
                                   pg_get_constraintdef(c.oid))
          FROM pg_constraint c WHERE c.conrelid = tbl::regclass AND c.contype = 'f';
    EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, tbl || '_old');
    EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', tbl || '_old', tbl || '_pkey',
                   tbl || '_old_pkey');
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                   ' INCLUDING STORAGE) PARTITION BY RANGE (%I)', tbl, tbl || '_old',
                   t.key_column);
    EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (%s)', tbl, primary_key);
END $$;

CREATE FUNCTION pg_temp.convert_finish(tbl text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    def text;
BEGIN
    -- Sequences owned by the old table's columns would go with it.
    FOR def IN SELECT format('ALTER SEQUENCE %s OWNED BY %I.%I', s.objid::regclass, tbl, a.attname)
                 FROM pg_depend s
                 JOIN pg_attribute a ON a.attrelid = s.refobjid AND a.attnum = s.refobjsubid
                 JOIN pg_class q ON q.oid = s.objid AND q.relkind = 'S'
                WHERE s.refobjid = (tbl || '_old')::regclass AND s.classid = 'pg_class'::regclass
                  AND s.deptype = 'a' LOOP
        EXECUTE def;
    END LOOP;
    EXECUTE format('DROP TABLE %I', tbl || '_old');
    FOR def IN SELECT d.def FROM converted_defs d WHERE d.tbl = convert_finish.tbl
                ORDER BY kind DESC LOOP
        EXECUTE replace(def, format(' ON public.%s_old ', tbl), format(' ON public.%s ', tbl));
    END LOOP;
END $$;

-- Months to create: every month that holds rows now, this one and the next.
CREATE FUNCTION pg_temp.months(tbl text, age_column text) RETURNS SETOF date
LANGUAGE plpgsql AS $$
DECLARE
    first date;
BEGIN
    EXECUTE format('SELECT date_trunc(''month'', min(%I) AT TIME ZONE ''UTC'')::date FROM %I',
                   age_column, tbl || '_old') INTO first;
    RETURN QUERY SELECT g::date FROM generate_series(
        least(coalesce(first, date_trunc('month', now() AT TIME ZONE 'UTC')::date),
              date_trunc('month', now() AT TIME ZONE 'UTC')::date),
        date_trunc('month', now() AT TIME ZONE 'UTC')::date + 31, interval '1 month') g;
END $$;

SELECT pg_temp.convert_start('messages', 'id');
SELECT pg_temp.convert_start('message_parts', 'message_id, part_no');
SELECT pg_temp.convert_start('deliveries', 'id');
SELECT pg_temp.convert_start('webhook_attempts', 'delivery_id, id');
SELECT pg_temp.convert_start('mo_messages', 'id, received_at');
SELECT pg_temp.convert_start('voice_cdrs', 'id, start_at');

-- messages and their parts: the months their rows were made in. Rows whose id
-- is not a UUIDv7 of that time (none that warpd made) land in DEFAULT.
SELECT partition_create('messages', m) FROM pg_temp.months('messages', 'created_at') m;
-- deliveries: the existing ids are a plain sequence, with no time in them, so
-- everything up to the end of this month is one partition from MINVALUE.
SELECT partition_create('deliveries', date_trunc('month', now() AT TIME ZONE 'UTC')::date, true);
SELECT partition_create('deliveries', (date_trunc('month', now() AT TIME ZONE 'UTC')
                                       + interval '1 month')::date);
SELECT partition_create('mo_messages', m) FROM pg_temp.months('mo_messages', 'received_at') m;
SELECT partition_create('voice_cdrs', m) FROM pg_temp.months('voice_cdrs', 'start_at') m;
SELECT partition_create_default(t) FROM unnest(ARRAY['messages', 'deliveries', 'mo_messages',
    'voice_cdrs']) t;

INSERT INTO messages SELECT * FROM messages_old;
INSERT INTO message_parts SELECT * FROM message_parts_old;
INSERT INTO deliveries SELECT * FROM deliveries_old;
INSERT INTO webhook_attempts SELECT * FROM webhook_attempts_old;
INSERT INTO mo_messages SELECT * FROM mo_messages_old;
INSERT INTO voice_cdrs SELECT * FROM voice_cdrs_old;

SELECT pg_temp.convert_finish(t) FROM unnest(ARRAY['message_parts', 'messages',
    'webhook_attempts', 'deliveries', 'mo_messages', 'voice_cdrs']) t;
DROP TABLE converted_defs;

ALTER TABLE deliveries ALTER COLUMN id SET DEFAULT snowflake_id('deliveries_id_seq');

CREATE TRIGGER messages_client_ref AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.client_ref IS NOT NULL) EXECUTE FUNCTION message_client_ref();
