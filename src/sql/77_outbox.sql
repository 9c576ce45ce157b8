-- The outbox: messages for senders outside the database (mail, Slack, a CRM),
-- delivered at least once.  A sender claims a batch with cs.outbox_claim
-- (FOR UPDATE SKIP LOCKED, so senders run side by side), sends it, and
-- acknowledges it with cs.outbox_ack; a message not acknowledged before its
-- lease ends is claimed again (by any sender), so a sender that crashes
-- mid-batch loses nothing, and a message may arrive twice.  Alerts enqueue a
-- message when they are created (cs._outbox_alerts, one statement trigger);
-- digests when cs.enqueue_digest runs (src/sql/78_digest.sql).

-- The message of an alert (a row of cs.alerts or cs.system_alerts as jsonb,
-- read by column name: no customer_id nor mrr_at_risk in a system alert).
CREATE OR REPLACE FUNCTION cs._alert_message(n jsonb, customer text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT jsonb_build_object('alert_id', n -> 'id', 'customer_id', n -> 'customer_id', 'customer', customer,
                          'alert_type', n -> 'alert_type', 'severity', n -> 'severity', 'title', n -> 'title',
                          'description', n -> 'description', 'assigned_to', n -> 'assigned_to',
                          'suggested_playbook', n -> 'suggested_actions' -> 0 ->> 'playbook',
                          'mrr_at_risk', coalesce(n -> 'mrr_at_risk', '0'), 'created_at', n -> 'created_at')
$$;
COMMENT ON FUNCTION cs._alert_message(jsonb, text) IS
    'Internal: the payload of the outbox message of an alert (its row as jsonb) about the named customer.';

-- Enqueues the message of one alert (its row as jsonb): on a Citus cluster
-- cs._raise_alerts_each calls it where the refresh runs, since the statement
-- trigger below cannot write the outbox (a reference table) from a shard.
CREATE OR REPLACE FUNCTION cs._enqueue_alert(n jsonb, customer text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    INSERT INTO cs.outbox (topic, recipient, subject, payload)
    VALUES ('alert', n ->> 'assigned_to', left(format('[%s] %s', n ->> 'severity', n ->> 'title'), 255),
            cs._alert_message(n, customer));
END;
$$;
COMMENT ON FUNCTION cs._enqueue_alert(jsonb, text) IS
    'Internal: enqueues the outbox message (topic alert) of one alert given as its row in jsonb.';

-- Enqueues one message per new alert (LISTEN cs_alerts stays for listeners).
CREATE OR REPLACE FUNCTION cs._outbox_alerts() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    -- A restore (pg_restore, or psql on a plain dump: COPY with row_security
    -- off) brings the alerts and their messages back: enqueueing again would
    -- send old alerts twice and collide with the restored messages.
    IF current_setting('row_security') = 'off' AND current_query() ~* '^\s*copy\s' THEN
        RETURN NULL;
    END IF;
    -- On a shard of a Citus cluster (<table>_<shard id>): the outbox is a
    -- reference table, which a shard's trigger cannot write; the writer of
    -- alerts there (cs._raise_alerts_each) enqueues the messages itself.
    IF TG_TABLE_NAME ~ '_[0-9]+$' THEN
        RETURN NULL;
    END IF;
    -- The alerts of cs.alerts and of cs.system_alerts (no customer_id, no
    -- mrr_at_risk: null and 0 in the message), read by column name.
    INSERT INTO cs.outbox (topic, recipient, subject, payload)
    SELECT 'alert', n.assigned_to, left(format('[%s] %s', n.severity, n.title), 255),
           cs._alert_message(j.j, c.name)
      FROM new_alerts n
     CROSS JOIN LATERAL (SELECT to_jsonb(n) AS j) j
      LEFT JOIN cs.customers c ON c.id = (j.j ->> 'customer_id')::uuid
     ORDER BY n.created_at, n.id;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION cs._outbox_alerts() IS
    'Internal, statement trigger on cs.alerts and cs.system_alerts: enqueues a message of topic alert in cs.outbox for every inserted alert (recipient its assignee); not when a restore COPYs alerts back.';
CREATE OR REPLACE TRIGGER outbox_alerts AFTER INSERT ON cs.alerts
    REFERENCING NEW TABLE AS new_alerts FOR EACH STATEMENT EXECUTE FUNCTION cs._outbox_alerts();
COMMENT ON TRIGGER outbox_alerts ON cs.alerts IS 'Enqueues new alerts in cs.outbox for external senders.';
CREATE OR REPLACE TRIGGER outbox_alerts AFTER INSERT ON cs.system_alerts
    REFERENCING NEW TABLE AS new_alerts FOR EACH STATEMENT EXECUTE FUNCTION cs._outbox_alerts();
COMMENT ON TRIGGER outbox_alerts ON cs.system_alerts IS 'Enqueues new model and data alerts in cs.outbox for external senders.';

CREATE OR REPLACE FUNCTION cs.outbox_claim(consumer text, max int DEFAULT 100, lease interval DEFAULT '5 minutes',
                                           topics text[] DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS SETOF cs.outbox
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF consumer IS NULL OR btrim(consumer) = '' THEN
        RAISE EXCEPTION 'consumer must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF outbox_claim.max IS NULL OR outbox_claim.max NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'max must be between 1 and 10000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lease IS NULL OR lease <= interval '0' THEN
        RAISE EXCEPTION 'lease must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite time' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT o.id FROM cs.outbox o
         WHERE o.acked_at IS NULL AND (o.leased_until IS NULL OR o.leased_until <= as_of)
           AND (topics IS NULL OR o.topic = ANY (topics))
         ORDER BY o.id
         LIMIT outbox_claim.max
           FOR UPDATE SKIP LOCKED)
    UPDATE cs.outbox o
       SET leased_until = as_of + lease, leased_by = consumer, attempts = o.attempts + 1
      FROM picked
     WHERE o.id = picked.id
    RETURNING o.*;
END;
$$;
COMMENT ON FUNCTION cs.outbox_claim(text, int, interval, text[], timestamptz) IS
    'Leases up to max pending messages (of the given topics, all when NULL) to consumer until as_of + lease and returns them, oldest first by id; messages leased by others are skipped (SKIP LOCKED), and a message whose lease ended unacknowledged is claimed again (at-least-once delivery). as_of is the clock, now() by default.';

CREATE OR REPLACE FUNCTION cs.outbox_ack(ids bigint[]) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE cs.outbox o SET acked_at = now(), acked_by = cs.acting_user(), leased_until = NULL
     WHERE o.id = ANY (ids) AND o.acked_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.outbox_ack(bigint[]) IS
    'Acknowledges delivered messages: they are never claimed again. Returns how many were pending (acknowledging twice is harmless).';

CREATE OR REPLACE FUNCTION cs.outbox_purge(older_than interval DEFAULT '30 days') RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM cs.outbox o WHERE o.acked_at IS NOT NULL AND o.acked_at < now() - older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs.outbox_purge(interval) IS 'Deletes messages acknowledged more than older_than ago; returns how many.';
