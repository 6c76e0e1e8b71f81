-- warpd v1 schema: the whole product, so later work fills it rather than redesigns it.
--
-- Conventions
--   * Money is bigint in micro-units of the account's currency (1 EUR = 1 000 000),
--     never a float: SMS prices of 0.0035 and per-second voice rates stay exact.
--   * Wall-clock timestamps are timestamptz (CDRs); durations are integers (ms or s).
--   * Ids the customer sees (message ids, CDR ids) are uuid, made by the instance
--     that accepts the message, so several warpd instances never coordinate ids.
--   * Enumerations are text with CHECK constraints: readable in psql, cheap to extend.

-- ---------------------------------------------------------------- accounts and money

CREATE TABLE rate_plans (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    currency    char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id                   bigserial PRIMARY KEY,
    name                 text NOT NULL UNIQUE,
    currency             char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Kept equal to the sum of this account's ledger rows by the trigger below.
    balance_micros       bigint NOT NULL DEFAULT 0,
    -- How far below zero the balance may go (postpaid customers).
    credit_limit_micros  bigint NOT NULL DEFAULT 0 CHECK (credit_limit_micros >= 0),
    rate_plan_id         bigint REFERENCES rate_plans (id),
    status               text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'suspended', 'closed')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Append-only: every change of a balance is one row here, in the same
-- transaction as the change. Unique (kind, message/call) makes "charged
-- exactly once" and "refunded at most once" a database fact, not a hope.
CREATE TABLE ledger (
    id             bigserial PRIMARY KEY,
    account_id     bigint NOT NULL REFERENCES accounts (id),
    amount_micros  bigint NOT NULL CHECK (amount_micros <> 0),
    kind           text NOT NULL
                   CHECK (kind IN ('topup', 'sms_charge', 'sms_refund', 'voice_charge',
                                   'adjustment')),
    message_id     uuid,
    call_id        uuid,
    note           text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (kind NOT IN ('sms_charge', 'sms_refund') OR message_id IS NOT NULL),
    CHECK (kind <> 'voice_charge' OR call_id IS NOT NULL)
);
CREATE INDEX ledger_account_idx ON ledger (account_id, id);
CREATE UNIQUE INDEX ledger_once_per_message ON ledger (message_id, kind)
    WHERE message_id IS NOT NULL;
CREATE UNIQUE INDEX ledger_once_per_call ON ledger (call_id, kind) WHERE call_id IS NOT NULL;

CREATE FUNCTION ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts
       SET balance_micros = balance_micros + NEW.amount_micros, updated_at = now()
     WHERE id = NEW.account_id;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_apply AFTER INSERT ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_apply();

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- A balance is only ever moved through the ledger.
CREATE FUNCTION accounts_balance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.balance_micros <> OLD.balance_micros AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'accounts.balance_micros changes only through the ledger'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_balance_guard BEFORE UPDATE OF balance_micros ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_balance_guard();

-- ---------------------------------------------------------------- customer access

CREATE TABLE smpp_users (
    id               bigserial PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id),
    -- SMPP 3.4 system_id is a C-Octet String of at most 16 octets with its NUL.
    system_id        text NOT NULL UNIQUE CHECK (length(system_id) BETWEEN 1 AND 15),
    -- scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>; SMPP passwords are at most 8 octets.
    password_hash    text NOT NULL,
    -- Empty means any source address.
    allowed_ips      cidr[] NOT NULL DEFAULT '{}',
    bind_types       text[] NOT NULL DEFAULT '{transmitter,receiver,transceiver}',
    max_binds        integer NOT NULL DEFAULT 4 CHECK (max_binds > 0),
    -- Token bucket: sustained messages per second and burst, across all binds.
    throughput_tps   numeric(10, 3) NOT NULL DEFAULT 100 CHECK (throughput_tps > 0),
    burst            integer NOT NULL DEFAULT 200 CHECK (burst > 0),
    -- Outstanding deliver_sm (DLR/MO) per bind before warpd waits for responses.
    window_size      integer NOT NULL DEFAULT 10 CHECK (window_size > 0),
    tls_required     boolean NOT NULL DEFAULT false,
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (bind_types <@ '{transmitter,receiver,transceiver}'::text[])
);
CREATE INDEX smpp_users_account_idx ON smpp_users (account_id);

CREATE TABLE api_keys (
    id            bigserial PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (id),
    -- The visible part, shown in lists and logs ("wk_3f9a1c"); the secret never is.
    prefix        text NOT NULL UNIQUE,
    -- SHA-256 of the whole key: keys are 256-bit random, so a slow hash adds nothing.
    key_hash      bytea NOT NULL CHECK (length(key_hash) = 32),
    scopes        text[] NOT NULL DEFAULT '{sms:send,sms:read}',
    allowed_ips   cidr[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE INDEX api_keys_account_idx ON api_keys (account_id);

CREATE TABLE webhooks (
    id            bigserial PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (id),
    url           text NOT NULL CHECK (url ~ '^https?://'),
    -- HMAC-SHA256 key for the signature header; needed in clear to sign.
    secret        text NOT NULL,
    events        text[] NOT NULL DEFAULT '{dlr,mo}',
    timeout_ms    integer NOT NULL DEFAULT 5000 CHECK (timeout_ms > 0),
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (events <@ '{dlr,mo,voice_cdr}'::text[])
);
CREATE INDEX webhooks_account_idx ON webhooks (account_id);

-- ---------------------------------------------------------------- SMS routing and prices

-- Upstream SMPP binds to carriers (Sinch: TLS on 3601, two binds, window 10).
CREATE TABLE connectors (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    host            text NOT NULL,
    port            integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls             boolean NOT NULL DEFAULT false,
    system_id       text NOT NULL CHECK (length(system_id) BETWEEN 1 AND 15),
    -- Sent in bind_*; the carrier needs it in clear.
    password        text NOT NULL,
    system_type     text NOT NULL DEFAULT '',
    bind_type       text NOT NULL DEFAULT 'transceiver'
                    CHECK (bind_type IN ('transmitter', 'transceiver', 'tx_rx_pair')),
    binds           integer NOT NULL DEFAULT 2 CHECK (binds BETWEEN 1 AND 64),
    window_size     integer NOT NULL DEFAULT 10 CHECK (window_size BETWEEN 1 AND 1000),
    -- Per bind: the carrier's MT/s limit.
    tps             numeric(10, 3) NOT NULL DEFAULT 10 CHECK (tps > 0),
    -- How concatenated messages go upstream.
    split_mode      text NOT NULL DEFAULT 'udh8'
                    CHECK (split_mode IN ('udh8', 'udh16', 'sar', 'payload')),
    -- How this carrier writes receipt ids (Kannel msg-id-type).
    dlr_id_format   text NOT NULL DEFAULT 'as_is' CHECK (dlr_id_format IN ('as_is', 'hex', 'dec')),
    options         jsonb NOT NULL DEFAULT '{}',
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- MT routes: the first enabled route (lowest priority) whose filters match
-- gives an ordered connector list: tried in order (failover) or by cost.
CREATE TABLE mt_routes (
    id           bigserial PRIMARY KEY,
    priority     integer NOT NULL DEFAULT 100,
    account_id   bigint REFERENCES accounts (id),      -- NULL: any account
    prefix       text NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]*$'),
    mcc_mnc      text CHECK (mcc_mnc ~ '^[0-9]{5,6}$'), -- NULL: any network
    source_regex text,                                  -- NULL: any sender
    strategy     text NOT NULL DEFAULT 'failover'
                 CHECK (strategy IN ('failover', 'least_cost', 'round_robin')),
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mt_routes_match_idx ON mt_routes (priority, prefix) WHERE enabled;

CREATE TABLE mt_route_connectors (
    route_id      bigint NOT NULL REFERENCES mt_routes (id) ON DELETE CASCADE,
    position      smallint NOT NULL CHECK (position >= 0),
    connector_id  bigint NOT NULL REFERENCES connectors (id),
    PRIMARY KEY (route_id, position),
    UNIQUE (route_id, connector_id)
);

-- MO routes: a number (long code or short code) and optional keyword -> account.
CREATE TABLE mo_routes (
    id             bigserial PRIMARY KEY,
    priority       integer NOT NULL DEFAULT 100,
    number         text NOT NULL CHECK (number ~ '^[0-9]+$'),
    keyword        text,                            -- NULL: any text
    account_id     bigint NOT NULL REFERENCES accounts (id),
    deliver_via    text NOT NULL DEFAULT 'smpp' CHECK (deliver_via IN ('smpp', 'webhook')),
    webhook_id     bigint REFERENCES webhooks (id),
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (deliver_via <> 'webhook' OR webhook_id IS NOT NULL)
);
CREATE INDEX mo_routes_number_idx ON mo_routes (number) WHERE enabled;

-- What a customer pays per message part, by destination prefix or network.
CREATE TABLE sms_rates (
    id            bigserial PRIMARY KEY,
    rate_plan_id  bigint NOT NULL REFERENCES rate_plans (id) ON DELETE CASCADE,
    prefix        text NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]*$'),
    mcc_mnc       text CHECK (mcc_mnc ~ '^[0-9]{5,6}$'),
    price_micros  bigint NOT NULL CHECK (price_micros >= 0),
    valid_from    timestamptz NOT NULL DEFAULT '-infinity',
    valid_to      timestamptz NOT NULL DEFAULT 'infinity',
    CHECK (valid_from < valid_to)
);
CREATE INDEX sms_rates_lookup_idx ON sms_rates (rate_plan_id, prefix text_pattern_ops);

-- What a carrier charges us per part: least-cost routing and margin reports.
CREATE TABLE sms_costs (
    id            bigserial PRIMARY KEY,
    connector_id  bigint NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    prefix        text NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]*$'),
    mcc_mnc       text CHECK (mcc_mnc ~ '^[0-9]{5,6}$'),
    cost_micros   bigint NOT NULL CHECK (cost_micros >= 0),
    currency      char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- 0..100: delivery quality, a tie-breaker for least-cost routing.
    quality       smallint NOT NULL DEFAULT 100 CHECK (quality BETWEEN 0 AND 100),
    valid_from    timestamptz NOT NULL DEFAULT '-infinity',
    valid_to      timestamptz NOT NULL DEFAULT 'infinity',
    CHECK (valid_from < valid_to)
);
CREATE INDEX sms_costs_lookup_idx ON sms_costs (connector_id, prefix text_pattern_ops);

-- ---------------------------------------------------------------- messages: queue and CDR

-- One row per accepted MT message: the durable queue while it waits, the
-- SMS CDR once it is final. A row exists before the customer hears our id.
CREATE TABLE messages (
    id                   uuid PRIMARY KEY,
    account_id           bigint NOT NULL REFERENCES accounts (id),
    channel              text NOT NULL CHECK (channel IN ('smpp', 'http')),
    smpp_user_id         bigint REFERENCES smpp_users (id),
    api_key_id           bigint REFERENCES api_keys (id),
    -- The customer's own reference (HTTP client_ref / idempotency key).
    client_ref           text,
    source_addr          text NOT NULL,
    source_ton           smallint NOT NULL DEFAULT 0,
    source_npi           smallint NOT NULL DEFAULT 0,
    destination_addr     text NOT NULL,
    dest_ton             smallint NOT NULL DEFAULT 1,
    dest_npi             smallint NOT NULL DEFAULT 1,
    mcc_mnc              text,
    esm_class            smallint NOT NULL DEFAULT 0,
    data_coding          smallint NOT NULL DEFAULT 0,
    registered_delivery  smallint NOT NULL DEFAULT 0,
    -- The message as the customer gave it (UDH included for SMPP); split upstream.
    body                 bytea NOT NULL,
    -- Optional TLVs to pass upstream, raw and in order (tag, length, value)*.
    tlvs                 bytea NOT NULL DEFAULT '',
    parts                smallint NOT NULL DEFAULT 1 CHECK (parts BETWEEN 1 AND 255),
    state                text NOT NULL DEFAULT 'queued'
                         CHECK (state IN ('queued', 'submitted', 'delivered', 'undeliverable',
                                          'expired', 'rejected', 'deleted', 'unknown',
                                          'failed')),
    route_id             bigint REFERENCES mt_routes (id),
    connector_id         bigint REFERENCES connectors (id),
    attempts             smallint NOT NULL DEFAULT 0,
    -- Queue position: when this message may next be sent (retries back off).
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    -- Which instance is sending it, until when (several warpd on one database).
    claimed_by           text,
    claimed_until        timestamptz,
    price_micros         bigint NOT NULL DEFAULT 0 CHECK (price_micros >= 0),
    cost_micros          bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    currency             char(3) NOT NULL,
    error_code           integer,           -- SMPP command_status or receipt err
    error_text           text,
    schedule_at          timestamptz,
    expires_at           timestamptz NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    submitted_at         timestamptz,
    done_at              timestamptz
);
-- The queue: what is due and not final. Small, because final rows leave it.
CREATE INDEX messages_queue_idx ON messages (next_attempt_at) WHERE state = 'queued';
CREATE INDEX messages_account_idx ON messages (account_id, created_at);
CREATE UNIQUE INDEX messages_client_ref_idx ON messages (account_id, client_ref)
    WHERE client_ref IS NOT NULL;
CREATE INDEX messages_in_flight_idx ON messages (submitted_at) WHERE state = 'submitted';

-- One row per part sent upstream: the carrier's id is how its receipt finds us.
CREATE TABLE message_parts (
    message_id           uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    part_no              smallint NOT NULL CHECK (part_no >= 1),
    connector_id         bigint NOT NULL REFERENCES connectors (id),
    -- Normalised as the connector's dlr_id_format says, so receipts match.
    carrier_message_id   text,
    state                text NOT NULL DEFAULT 'submitted'
                         CHECK (state IN ('submitted', 'delivered', 'undeliverable',
                                          'expired', 'rejected', 'deleted', 'unknown',
                                          'failed')),
    error_code           integer,
    submitted_at         timestamptz NOT NULL DEFAULT now(),
    done_at              timestamptz,
    PRIMARY KEY (message_id, part_no)
);
CREATE INDEX message_parts_carrier_idx ON message_parts (connector_id, carrier_message_id);

-- MO messages from carriers (whole, after reassembly for HTTP customers).
CREATE TABLE mo_messages (
    id                   uuid PRIMARY KEY,
    connector_id         bigint REFERENCES connectors (id),
    carrier_message_id   text,
    account_id           bigint REFERENCES accounts (id),
    mo_route_id          bigint REFERENCES mo_routes (id),
    source_addr          text NOT NULL,
    destination_addr     text NOT NULL,
    esm_class            smallint NOT NULL DEFAULT 0,
    data_coding          smallint NOT NULL DEFAULT 0,
    body                 bytea NOT NULL,
    tlvs                 bytea NOT NULL DEFAULT '',
    state                text NOT NULL DEFAULT 'received'
                         CHECK (state IN ('received', 'delivered', 'unrouted', 'expired')),
    received_at          timestamptz NOT NULL DEFAULT now(),
    delivered_at         timestamptz
);
CREATE INDEX mo_messages_account_idx ON mo_messages (account_id, received_at);

-- Store-and-forward of what we owe customers (DLRs and MOs) over SMPP or a
-- webhook: kept and retried until taken or expired.
CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id),
    kind             text NOT NULL CHECK (kind IN ('dlr', 'mo')),
    message_id       uuid REFERENCES messages (id),
    mo_id            uuid REFERENCES mo_messages (id),
    via              text NOT NULL CHECK (via IN ('smpp', 'webhook')),
    smpp_user_id     bigint REFERENCES smpp_users (id),
    webhook_id       bigint REFERENCES webhooks (id),
    payload          jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'expired', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    CHECK ((kind = 'dlr') = (message_id IS NOT NULL)),
    CHECK ((kind = 'mo') = (mo_id IS NOT NULL)),
    CHECK (via <> 'smpp' OR smpp_user_id IS NOT NULL),
    CHECK (via <> 'webhook' OR webhook_id IS NOT NULL)
);
CREATE INDEX deliveries_pending_idx ON deliveries (account_id, next_attempt_at)
    WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id            bigserial PRIMARY KEY,
    delivery_id   bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt_no    integer NOT NULL,
    status_code   integer,                  -- NULL: no HTTP answer
    error         text,
    latency_ms    integer,
    attempted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id);

-- ---------------------------------------------------------------- voice

CREATE TABLE sip_trunks (
    id                bigserial PRIMARY KEY,
    account_id        bigint NOT NULL REFERENCES accounts (id),
    name              text NOT NULL UNIQUE,
    auth_mode         text NOT NULL CHECK (auth_mode IN ('ip', 'digest', 'register')),
    allowed_ips       cidr[] NOT NULL DEFAULT '{}',
    username          text UNIQUE,
    realm             text,
    -- HA1 per algorithm (RFC 8760), so no clear password is stored.
    ha1_md5           text,
    ha1_sha256        text,
    ha1_sha512_256    text,
    max_channels      integer NOT NULL DEFAULT 30 CHECK (max_channels > 0),
    max_cps           numeric(8, 2) NOT NULL DEFAULT 5 CHECK (max_cps > 0),
    -- E.164 normalisation of what the PBX dials: its country and national prefix.
    country_code      text NOT NULL DEFAULT '' CHECK (country_code ~ '^[0-9]{0,3}$'),
    national_prefix   text NOT NULL DEFAULT '0',
    international_prefix text NOT NULL DEFAULT '00',
    -- Caller-ID presented must be one of the account's DIDs unless trusted.
    trust_caller_id   boolean NOT NULL DEFAULT false,
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (auth_mode = 'ip' OR username IS NOT NULL),
    CHECK (auth_mode <> 'ip' OR cardinality(allowed_ips) > 0)
);
CREATE INDEX sip_trunks_account_idx ON sip_trunks (account_id);

-- REGISTER bindings of registration-based trunks (several instances share them).
CREATE TABLE sip_registrations (
    trunk_id       bigint NOT NULL REFERENCES sip_trunks (id) ON DELETE CASCADE,
    contact        text NOT NULL,
    -- Where the REGISTER really came from (NAT): inbound calls go there.
    source         text NOT NULL,
    transport      text NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls')),
    call_id        text NOT NULL,
    cseq           integer NOT NULL,
    user_agent     text,
    instance       text NOT NULL,
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (trunk_id, contact)
);
CREATE INDEX sip_registrations_expiry_idx ON sip_registrations (expires_at);

CREATE TABLE carrier_gateways (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    host             text NOT NULL,
    port             integer NOT NULL DEFAULT 5060 CHECK (port BETWEEN 1 AND 65535),
    transport        text NOT NULL DEFAULT 'udp' CHECK (transport IN ('udp', 'tcp', 'tls')),
    -- Credentials for carriers that challenge us (401/407) or want a REGISTER.
    username         text,
    password         text,
    register         boolean NOT NULL DEFAULT false,
    strip_digits     smallint NOT NULL DEFAULT 0 CHECK (strip_digits >= 0),
    add_prefix       text NOT NULL DEFAULT '',
    max_channels     integer CHECK (max_channels > 0),
    -- OPTIONS keepalive: a gateway that stops answering is skipped.
    probe            boolean NOT NULL DEFAULT true,
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dids (
    id          bigserial PRIMARY KEY,
    number      text NOT NULL UNIQUE CHECK (number ~ '^[1-9][0-9]{5,14}$'),  -- E.164, no '+'
    account_id  bigint NOT NULL REFERENCES accounts (id),
    trunk_id    bigint REFERENCES sip_trunks (id),
    -- Also an MO number for SMS, when set.
    sms_enabled boolean NOT NULL DEFAULT false,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dids_account_idx ON dids (account_id);

CREATE TABLE voice_routes (
    id          bigserial PRIMARY KEY,
    priority    integer NOT NULL DEFAULT 100,
    account_id  bigint REFERENCES accounts (id),    -- NULL: any account
    prefix      text NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]*$'),
    strategy    text NOT NULL DEFAULT 'failover'
                CHECK (strategy IN ('failover', 'least_cost', 'round_robin')),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_routes_match_idx ON voice_routes (priority, prefix) WHERE enabled;

CREATE TABLE voice_route_gateways (
    route_id    bigint NOT NULL REFERENCES voice_routes (id) ON DELETE CASCADE,
    position    smallint NOT NULL CHECK (position >= 0),
    gateway_id  bigint NOT NULL REFERENCES carrier_gateways (id),
    PRIMARY KEY (route_id, position),
    UNIQUE (route_id, gateway_id)
);

-- Per-minute prices with billing increments (60/60, 1/1, 30/6 ...).
CREATE TABLE voice_rates (
    id                    bigserial PRIMARY KEY,
    rate_plan_id          bigint NOT NULL REFERENCES rate_plans (id) ON DELETE CASCADE,
    prefix                text NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]*$'),
    price_per_min_micros  bigint NOT NULL CHECK (price_per_min_micros >= 0),
    connect_fee_micros    bigint NOT NULL DEFAULT 0 CHECK (connect_fee_micros >= 0),
    first_increment_s     smallint NOT NULL DEFAULT 60 CHECK (first_increment_s > 0),
    next_increment_s      smallint NOT NULL DEFAULT 60 CHECK (next_increment_s > 0),
    valid_from            timestamptz NOT NULL DEFAULT '-infinity',
    valid_to              timestamptz NOT NULL DEFAULT 'infinity',
    CHECK (valid_from < valid_to)
);
CREATE INDEX voice_rates_lookup_idx ON voice_rates (rate_plan_id, prefix text_pattern_ops);

CREATE TABLE voice_costs (
    id                   bigserial PRIMARY KEY,
    gateway_id           bigint NOT NULL REFERENCES carrier_gateways (id) ON DELETE CASCADE,
    prefix               text NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]*$'),
    cost_per_min_micros  bigint NOT NULL CHECK (cost_per_min_micros >= 0),
    currency             char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    first_increment_s    smallint NOT NULL DEFAULT 60 CHECK (first_increment_s > 0),
    next_increment_s     smallint NOT NULL DEFAULT 60 CHECK (next_increment_s > 0),
    valid_from           timestamptz NOT NULL DEFAULT '-infinity',
    valid_to             timestamptz NOT NULL DEFAULT 'infinity',
    CHECK (valid_from < valid_to)
);
CREATE INDEX voice_costs_lookup_idx ON voice_costs (gateway_id, prefix text_pattern_ops);

CREATE TABLE voice_cdrs (
    id                 uuid PRIMARY KEY,
    account_id         bigint REFERENCES accounts (id),
    trunk_id           bigint REFERENCES sip_trunks (id),
    direction          text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    call_id_a          text NOT NULL,        -- the PBX side (or carrier side inbound)
    call_id_b          text,                 -- our leg to the gateway / trunk
    src_raw            text NOT NULL,
    dst_raw            text NOT NULL,
    src_e164           text,
    dst_e164           text,
    p_asserted_identity text,
    diversion          text,
    route_id           bigint REFERENCES voice_routes (id),
    gateway_id         bigint REFERENCES carrier_gateways (id),
    attempts           smallint NOT NULL DEFAULT 0,
    -- One final SIP status per gateway tried, in order.
    attempt_codes      smallint[] NOT NULL DEFAULT '{}',
    start_at           timestamptz NOT NULL,  -- INVITE received
    ring_at            timestamptz,           -- first 18x: post-dial delay
    answer_at          timestamptz,
    end_at             timestamptz NOT NULL,
    duration_ms        integer NOT NULL CHECK (duration_ms >= 0),
    billsec            integer NOT NULL DEFAULT 0 CHECK (billsec >= 0),
    disposition        text NOT NULL
                       CHECK (disposition IN ('ANSWERED', 'NO ANSWER', 'BUSY', 'FAILED',
                                              'CONGESTION', 'CANCELLED')),
    sip_code           smallint,
    q850_cause         smallint,
    hangup_by          text CHECK (hangup_by IN ('caller', 'callee', 'system', 'media_timeout',
                                                 'session_timer')),
    codec_a            text,
    codec_b            text,
    rtp_packets_a      bigint,
    rtp_packets_b      bigint,
    rtp_bytes_a        bigint,
    rtp_bytes_b        bigint,
    rtp_lost_a         bigint,
    rtp_lost_b         bigint,
    mos_avg_x10        smallint,              -- rtpengine's MOS scaled by 10
    mos_min_x10        smallint,
    rtpengine_node     text,
    price_micros       bigint NOT NULL DEFAULT 0 CHECK (price_micros >= 0),
    cost_micros        bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    currency           char(3),
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voice_cdrs_account_idx ON voice_cdrs (account_id, start_at);
CREATE INDEX voice_cdrs_call_id_idx ON voice_cdrs (call_id_a);
