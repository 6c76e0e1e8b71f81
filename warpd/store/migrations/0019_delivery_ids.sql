-- insert_deliveries() (0018) returned each new row whole, its payload too, which
-- the journal had just sent and then parsed again (a receipt's JSON per delivery,
-- at thousands a second: PostgreSQL printing it, warpd's driver reading it, orjson
-- loading it). The ids are now drawn first and returned alone, in the order of the
-- arrays: the caller pairs them with the rows it holds.
DROP FUNCTION insert_deliveries(bigint[], text[], uuid[], uuid[], text[], bigint[], bigint[],
                                text[], jsonb[], timestamptz[], text[], timestamptz[]);

CREATE FUNCTION insert_deliveries(account_ids bigint[], kinds text[], message_ids uuid[],
                                  mo_ids uuid[], vias text[], smpp_user_ids bigint[],
                                  webhook_ids bigint[], urls text[], payloads jsonb[],
                                  expiries timestamptz[], claimers text[], leases timestamptz[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[] := ARRAY(SELECT snowflake_id('deliveries_id_seq')
                            FROM generate_series(1, cardinality(account_ids)));
BEGIN
    INSERT INTO deliveries (id, account_id, kind, message_id, mo_id, via, smpp_user_id,
                            webhook_id, url, payload, expires_at, claimed_by, claimed_until)
    SELECT * FROM unnest(ids, account_ids, kinds, message_ids, mo_ids, vias, smpp_user_ids,
                         webhook_ids, urls, payloads, expiries, claimers, leases);
    IF 'webhook' = ANY (vias) THEN
        PERFORM pg_notify('warpd_deliveries', '');
    END IF;
    IF EXISTS (SELECT FROM unnest(vias, claimers) AS n(v, c) WHERE n.v = 'smpp' AND n.c IS NULL)
    THEN
        PERFORM pg_notify('warpd_smpp_deliveries', '');
    END IF;
    RETURN ids;
END $$;
ALTER FUNCTION insert_deliveries(bigint[], text[], uuid[], uuid[], text[], bigint[], bigint[],
                                 text[], jsonb[], timestamptz[], text[], timestamptz[])
    SET plan_cache_mode = auto;
