-- Billing loaders: Stripe subscriptions and customers, Chargebee customers,
-- subscriptions and invoices, as their APIs list them and their webhooks send
-- them.  They follow the rules of src/sql/80_integrations.sql (upsert on the
-- source's id, identical rows untouched, unmappable records rejected with the
-- reason, customers by id, key or domain) and are dispatched by cs.ingest.
--
-- Subscriptions become history: cs._apply_subscription compares the state a
-- record describes with the rows of the subscription in force on the day of
-- the change, closes the rows that changed (ended_at = that day) and opens new
-- ones, so the sum of mrr over rows with started_at <= d < ended_at is the MRR
-- at d.  The day of a change is the webhook event's time, Chargebee's
-- updated_at, or, for a Stripe object that carries no time of change, the
-- day it is loaded.  The first time a subscription is seen its rows open on
-- its start date with the items it has then (the only ones known).

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- Monthly amount of a recurring amount billed every count units.
CREATE OR REPLACE FUNCTION cs._monthly(amount numeric, unit text, count numeric)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF count IS NULL OR count < 1 OR count <> trunc(count) THEN
        RAISE EXCEPTION 'billing interval count % is out of range', coalesce(count::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN amount / CASE lower(unit) WHEN 'month' THEN count
                                     WHEN 'year' THEN 12 * count
                                     WHEN 'week' THEN count * 12 / 52.0
                                     WHEN 'day' THEN count * 12 / 365.0
                                     ELSE cs._monthly_unit_error(unit) END;
END;
$$;
COMMENT ON FUNCTION cs._monthly(numeric, text, numeric) IS 'Internal: a recurring amount billed every count units (day, week, month, year) as a monthly amount; an error for other units or counts.';

-- The error for a billing period unit that is not day, week, month or year.
CREATE OR REPLACE FUNCTION cs._monthly_unit_error(unit text)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'unknown billing period unit "%"', coalesce(unit, '(none)') USING ERRCODE = 'invalid_parameter_value';
END;
$$;
COMMENT ON FUNCTION cs._monthly_unit_error(text) IS 'Internal: raises the error of an unknown billing period unit.';

-- Unix seconds (a JSON number or numeric string) as a time, NULL when absent.
CREATE OR REPLACE FUNCTION cs._unix_time(what text, v text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF v IS NULL OR v = '' THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[0-9]{1,11}$' THEN
        RAISE EXCEPTION '% "%" is not a time in Unix seconds', what, v USING ERRCODE = 'invalid_datetime_format';
    END IF;
    RETURN to_timestamp(v::float8);
END;
$$;
COMMENT ON FUNCTION cs._unix_time(text, text) IS 'Internal: Unix seconds as a time; NULL when absent, an error when not a number of seconds.';

-- The UTC day of a time.
CREATE OR REPLACE FUNCTION cs._utc_day(t timestamptz)
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (t AT TIME ZONE 'UTC')::date $$;
COMMENT ON FUNCTION cs._utc_day(timestamptz) IS 'Internal: the UTC calendar day of a time.';

-- The customer of a Chargebee record: the Chargebee customer id's mapping, the
-- customer whose external_id is the metadata key's value (meta_data, or a
-- custom field of that name), the customer whose external_id is the Chargebee
-- id itself, then the email domain.  A match is remembered for the id.
CREATE OR REPLACE FUNCTION cs._chargebee_customer(s cs.data_sources, cb_customer text, cust jsonb)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c    uuid;
    k    text := coalesce(s.options ->> 'metadata_key', 'external_id');
    meta text := nullif(coalesce(cust -> 'meta_data' ->> k, cust ->> k), '');
    mail text := nullif(cust ->> 'email', '');
BEGIN
    IF coalesce(cb_customer, '') = '' THEN
        PERFORM cs._unmappable('no Chargebee customer_id');
    END IF;
    c := cs.resolve_customer(s.system, 'customer', cb_customer);
    IF c IS NULL AND meta IS NOT NULL THEN
        c := cs.resolve_customer(s.system, 'external_id', meta);
    END IF;
    IF c IS NULL THEN
        c := cs.resolve_customer(s.system, 'external_id', cb_customer);
    END IF;
    IF c IS NULL AND mail IS NOT NULL THEN
        c := cs.resolve_customer(s.system, 'domain', cs.domain_of(mail));
    END IF;
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: Chargebee customer %s (%s %s, email %s) maps to no customer',
                                      cb_customer, k, coalesce(meta, '(none)'), coalesce(mail, '(none)')));
    END IF;
    PERFORM cs._learn_key(s.system, 'customer', cb_customer, c);
    RETURN c;
END;
$$;
COMMENT ON FUNCTION cs._chargebee_customer(cs.data_sources, text, jsonb) IS
    'Internal: customer of a Chargebee record by customer id mapping, metadata external_id (meta_data or custom field), external_id equal to the Chargebee id, or email domain; remembers the Chargebee id.';

------------------------------------------------------------------------------
-- Subscription history
------------------------------------------------------------------------------

-- Applies the state of a billing subscription at changed_at to cs.subscriptions,
-- cs.contract_terms, cs.billing_subscriptions and cs.customers.churned_at.
-- items: [{"product", "seats", "mrr"}] (the items it bills while live);
-- live: it bills now (trials with mrr 0); ended: it has ended (cancelled);
-- ends: the day it ends or ended, NULL while it renews; started: its start.
CREATE OR REPLACE FUNCTION cs._apply_subscription(src text, c uuid, sub_id text, status text, live boolean, ended boolean,
                                                  items jsonb, changed_at timestamptz, started date, ends date,
                                                  period_start timestamptz, period_end timestamptz)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    st       cs.billing_subscriptions;
    known    boolean;
    first    boolean;
    d        date := cs._utc_day(changed_at);
    use_it   boolean;
    r        record;
    e        date;
    changes  int := 0;
    n        int;
BEGIN
    IF coalesce(sub_id, '') = '' THEN
        PERFORM cs._unmappable('no subscription id');
    END IF;
    PERFORM cs._check_time('time of the change', changed_at);
    IF started IS NOT NULL THEN
        PERFORM cs._check_time('subscription start', started);
    END IF;
    IF period_end <= period_start THEN
        PERFORM cs._unmappable(format('current period ends (%s) before it starts (%s)', period_end, period_start));
    END IF;
    SELECT * INTO st FROM cs.billing_subscriptions b
     WHERE b.customer_id = c AND b.source = src AND b.source_id = sub_id FOR UPDATE;
    known := FOUND;
    -- an older state than the one applied: webhooks arrive out of order, lists are reloaded
    IF known AND changed_at < st.observed_at THEN
        RETURN 'unchanged';
    END IF;
    first := NOT EXISTS (SELECT 1 FROM cs.subscriptions x WHERE x.customer_id = c AND x.source = src AND x.source_id = sub_id);
    -- the first sight of an ended subscription still records the history it had
    use_it := live OR (first AND ended);
    started := least(coalesce(started, d), d);
    IF ends < started THEN
        ends := started;
    END IF;

    FOR r IN
        WITH w AS (
            SELECT i ->> 'product' AS product, sum((i ->> 'seats')::int) AS seats, round(sum((i ->> 'mrr')::numeric), 2) AS mrr
              FROM jsonb_array_elements(CASE WHEN use_it THEN coalesce(items, '[]') ELSE '[]' END) i
             GROUP BY 1
        ), k AS (
            SELECT x.id, x.product, x.seats, x.mrr, x.started_at, x.ended_at
              FROM cs.subscriptions x
             WHERE x.customer_id = c AND x.source = src AND x.source_id = sub_id
               AND (x.ended_at IS NULL OR x.ended_at > d)
        )
        SELECT coalesce(w.product, k.product) AS product, w.seats, w.mrr, w.product IS NOT NULL AS wanted,
               k.id, k.seats AS k_seats, k.mrr AS k_mrr, k.started_at AS k_start, k.ended_at AS k_end
          FROM w FULL JOIN k ON k.product = w.product
         ORDER BY 1, k.started_at
    LOOP
        IF r.wanted AND r.id IS NOT NULL AND (r.seats, r.mrr) = (r.k_seats, r.k_mrr) THEN
            -- same items: only a cancellation scheduled or withdrawn
            UPDATE cs.subscriptions x SET ended_at = CASE WHEN ends IS NOT NULL THEN greatest(ends, x.started_at) END
             WHERE x.id = r.id AND x.ended_at IS DISTINCT FROM CASE WHEN ends IS NOT NULL THEN greatest(ends, x.started_at) END;
        ELSIF r.wanted AND r.id IS NOT NULL AND r.k_start >= d THEN
            -- changed on the day it started: the day's last state stands
            UPDATE cs.subscriptions x SET seats = r.seats, mrr = r.mrr, ended_at = CASE WHEN ends IS NOT NULL THEN greatest(ends, x.started_at) END
             WHERE x.id = r.id;
        ELSIF r.wanted THEN
            IF r.id IS NOT NULL THEN
                UPDATE cs.subscriptions x SET ended_at = d WHERE x.id = r.id;
                changes := changes + 1;
            END IF;
            INSERT INTO cs.subscriptions AS x (customer_id, product, seats, mrr, started_at, ended_at, source, source_id)
            VALUES (c, r.product, r.seats, r.mrr, CASE WHEN first THEN started ELSE d END,
                    CASE WHEN ends IS NOT NULL THEN greatest(ends, CASE WHEN first THEN started ELSE d END) END, src, sub_id)
            ON CONFLICT ON CONSTRAINT subscriptions_source_key DO UPDATE
               SET seats = excluded.seats, mrr = excluded.mrr, ended_at = excluded.ended_at
             WHERE (x.seats, x.mrr, x.ended_at) IS DISTINCT FROM (excluded.seats, excluded.mrr, excluded.ended_at);
        ELSE
            -- the product is gone, or the subscription stopped billing
            e := greatest(CASE WHEN ended AND ends IS NOT NULL THEN ends ELSE d END, r.k_start);
            UPDATE cs.subscriptions x SET ended_at = e WHERE x.id = r.id AND x.ended_at IS DISTINCT FROM e;
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        changes := changes + n;
    END LOOP;

    -- the term in force: renewal dates as they were known
    IF use_it AND cs._utc_day(period_end) > cs._utc_day(period_start) THEN
        INSERT INTO cs.contract_terms AS t (customer_id, term_start, term_end, mrr, seats, source, source_id)
        SELECT c, cs._utc_day(period_start), cs._utc_day(period_end),
               coalesce(round(sum((i ->> 'mrr')::numeric), 2), 0), coalesce(sum((i ->> 'seats')::int), 0), src, sub_id
          FROM jsonb_array_elements(coalesce(items, '[]')) i
        ON CONFLICT (customer_id, term_start) DO UPDATE
           SET term_end = excluded.term_end, mrr = excluded.mrr, seats = excluded.seats
         WHERE t.source = excluded.source AND t.source_id IS NOT DISTINCT FROM excluded.source_id
           AND (t.term_end, t.mrr, t.seats) IS DISTINCT FROM (excluded.term_end, excluded.mrr, excluded.seats);
        GET DIAGNOSTICS n = ROW_COUNT;
        changes := changes + n;
    END IF;

    -- churn: an ended subscription leaving the customer without any subscription
    -- in force is a churn on its last day; a subscription billing again after a
    -- churn brings the customer back
    IF ended AND ends <= current_date
       AND NOT EXISTS (SELECT 1 FROM cs.subscriptions x WHERE x.customer_id = c AND (x.ended_at IS NULL OR x.ended_at > ends)) THEN
        UPDATE cs.customers u SET churned_at = (SELECT max(x.ended_at) FROM cs.subscriptions x WHERE x.customer_id = c)
         WHERE u.id = c AND (u.churned_at IS NULL OR u.churned_at < ends);
        GET DIAGNOSTICS n = ROW_COUNT;
        changes := changes + n;
    ELSIF live AND coalesce(ends, 'infinity') > current_date THEN
        UPDATE cs.customers u SET churned_at = NULL WHERE u.id = c AND u.churned_at <= d;
        GET DIAGNOSTICS n = ROW_COUNT;
        changes := changes + n;
    END IF;

    INSERT INTO cs.billing_subscriptions AS b (customer_id, source, source_id, status, current_period_start, current_period_end,
                                               ends_on, observed_at)
    VALUES (c, src, sub_id, status, period_start, period_end, ends, changed_at)
    ON CONFLICT (customer_id, source, source_id) DO UPDATE
       SET status = excluded.status, current_period_start = excluded.current_period_start,
           current_period_end = excluded.current_period_end, ends_on = excluded.ends_on, observed_at = excluded.observed_at
     WHERE (b.status, b.current_period_start, b.current_period_end, b.ends_on)
           IS DISTINCT FROM (excluded.status, excluded.current_period_start, excluded.current_period_end, excluded.ends_on)
        OR (excluded.observed_at > b.observed_at AND changes > 0);
    GET DIAGNOSTICS n = ROW_COUNT;
    changes := changes + n;
    RETURN CASE WHEN NOT known THEN 'inserted' WHEN changes > 0 THEN 'updated' ELSE 'unchanged' END;
END;
$$;
COMMENT ON FUNCTION cs._apply_subscription(text, uuid, text, text, boolean, boolean, jsonb, timestamptz, date, date, timestamptz, timestamptz) IS
    'Internal: applies the state of a billing subscription at a time as history: rows of cs.subscriptions whose seats or MRR change end that day and new rows start, removed products end, cancellations set ended_at, the current period is upserted into cs.contract_terms, churned_at is set when the last subscription in force ends (and cleared when one bills again); a state older than the one applied changes nothing.';

------------------------------------------------------------------------------
-- Stripe
------------------------------------------------------------------------------

-- One Stripe subscription object, or a customer.subscription.* event.
CREATE OR REPLACE FUNCTION cs._ingest_stripe_subscription(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    sub     jsonb := p;
    at      timestamptz;
    c       uuid;
    cust    jsonb;
    st      text;
    items   jsonb := '[]';
    i       jsonb;
    price   jsonb;
    qty     numeric;
    unit    numeric;
    mrr     numeric;
    prod    text;
    ends    date;
    p_start timestamptz;
    p_end   timestamptz;
BEGIN
    IF p ? 'type' AND jsonb_typeof(p -> 'data' -> 'object') = 'object' THEN
        IF p ->> 'type' NOT LIKE 'customer.subscription.%' THEN
            PERFORM cs._unmappable(format('not a subscription event (type %s)', p ->> 'type'));
        END IF;
        sub := p -> 'data' -> 'object';
        at := cs._unix_time('event created', p ->> 'created');
    END IF;
    IF sub ->> 'object' IS DISTINCT FROM 'subscription' OR coalesce(sub ->> 'id', '') = '' THEN
        PERFORM cs._unmappable('not a Stripe subscription object (object must be "subscription" with an id)');
    END IF;
    cust := CASE WHEN jsonb_typeof(sub -> 'customer') = 'object' THEN sub -> 'customer' ELSE jsonb_build_object('id', sub ->> 'customer') END;
    c := cs._stripe_customer(s.system, cust ->> 'id',
                             coalesce(sub -> 'metadata' ->> (s.options ->> 'metadata_key'), cust -> 'metadata' ->> (s.options ->> 'metadata_key')),
                             cust ->> 'email');
    st := lower(sub ->> 'status');
    IF st IS NULL OR st NOT IN ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused') THEN
        PERFORM cs._unmappable(format('unknown Stripe subscription status "%s"', coalesce(sub ->> 'status', '(none)')));
    END IF;
    FOR i IN SELECT x FROM jsonb_array_elements(coalesce(sub -> 'items' -> 'data', '[]')) x LOOP
        price := coalesce(i -> 'price', i -> 'plan');
        prod := CASE WHEN jsonb_typeof(price -> 'product') = 'object'
                     THEN coalesce(price -> 'product' ->> 'name', price -> 'product' ->> 'id') ELSE price ->> 'product' END;
        prod := coalesce(nullif(prod, ''), price ->> 'id');
        IF prod IS NULL THEN
            PERFORM cs._unmappable(format('subscription %s: an item has no price', sub ->> 'id'));
        END IF;
        qty := cs._number('quantity', coalesce(i ->> 'quantity', '1'));
        IF qty < 0 OR qty <> trunc(qty) OR qty >= 1e8 THEN
            PERFORM cs._unmappable(format('subscription %s: quantity %s is out of range', sub ->> 'id', qty));
        END IF;
        IF price -> 'recurring' ->> 'usage_type' = 'metered' OR price ->> 'usage_type' = 'metered' THEN
            mrr := 0;   -- billed on usage: no amount known in advance
        ELSE
            unit := cs._number('unit_amount', coalesce(price ->> 'unit_amount', price ->> 'unit_amount_decimal', price ->> 'amount'));
            IF unit IS NULL THEN
                PERFORM cs._unmappable(format('subscription %s: price %s has no unit_amount (tiered prices are not supported)',
                                              sub ->> 'id', price ->> 'id'));
            ELSIF unit < 0 THEN
                PERFORM cs._unmappable(format('subscription %s: unit_amount %s is out of range', sub ->> 'id', unit));
            END IF;
            mrr := cs._monthly(cs._stripe_amount(unit * qty, coalesce(price ->> 'currency', sub ->> 'currency', 'usd')),
                               coalesce(price -> 'recurring' ->> 'interval', price ->> 'interval'),
                               cs._number('interval_count', coalesce(price -> 'recurring' ->> 'interval_count', price ->> 'interval_count', '1')));
        END IF;
        IF st = 'trialing' THEN
            mrr := 0;
        END IF;
        IF mrr >= 1e8 THEN
            PERFORM cs._unmappable(format('subscription %s: MRR %s is out of range', sub ->> 'id', round(mrr, 2)));
        END IF;
        items := items || jsonb_build_array(jsonb_build_object('product', prod, 'seats', qty, 'mrr', mrr));
        -- API versions from 2025-03-31 carry the period on the items
        p_start := least(p_start, cs._unix_time('current_period_start', i ->> 'current_period_start'));
        p_end := greatest(p_end, cs._unix_time('current_period_end', i ->> 'current_period_end'));
    END LOOP;
    IF items = '[]' AND st IN ('trialing', 'active', 'past_due', 'unpaid') THEN
        PERFORM cs._unmappable(format('subscription %s has no items', sub ->> 'id'));
    END IF;
    p_start := coalesce(cs._unix_time('current_period_start', sub ->> 'current_period_start'), p_start);
    p_end := coalesce(cs._unix_time('current_period_end', sub ->> 'current_period_end'), p_end);
    at := coalesce(at, now());
    ends := CASE WHEN st = 'canceled'
                 THEN cs._utc_day(coalesce(cs._unix_time('ended_at', sub ->> 'ended_at'), cs._unix_time('canceled_at', sub ->> 'canceled_at'), at))
                 WHEN (sub ->> 'cancel_at_period_end')::boolean THEN cs._utc_day(p_end)
                 ELSE cs._utc_day(cs._unix_time('cancel_at', sub ->> 'cancel_at')) END;
    RETURN cs._apply_subscription(s.name, c, sub ->> 'id', st, st IN ('trialing', 'active', 'past_due', 'unpaid'), st = 'canceled',
                                  items, at,
                                  cs._utc_day(coalesce(cs._unix_time('start_date', sub ->> 'start_date'), cs._unix_time('created', sub ->> 'created'))),
                                  ends, p_start, p_end);
END;
$$;
COMMENT ON FUNCTION cs._ingest_stripe_subscription(cs.data_sources, jsonb) IS
    'Internal: loads one Stripe subscription (object or customer.subscription.* event) as history in cs.subscriptions (one row per product: quantity as seats, unit_amount x quantity per month as MRR) and its current period in cs.contract_terms.';

-- One Stripe customer object, or a customer.* event: learns its customer key.
CREATE OR REPLACE FUNCTION cs._ingest_stripe_customer(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    o     jsonb := p;
    known boolean;
BEGIN
    IF p ? 'type' AND jsonb_typeof(p -> 'data' -> 'object') = 'object' THEN
        IF p ->> 'type' NOT IN ('customer.created', 'customer.updated', 'customer.deleted') THEN
            PERFORM cs._unmappable(format('not a customer event (type %s)', p ->> 'type'));
        END IF;
        o := p -> 'data' -> 'object';
    END IF;
    IF o ->> 'object' IS DISTINCT FROM 'customer' OR coalesce(o ->> 'id', '') = '' THEN
        PERFORM cs._unmappable('not a Stripe customer object (object must be "customer" with an id)');
    END IF;
    IF (o ->> 'deleted')::boolean THEN
        RETURN 'unchanged';   -- a deletion carries nothing to map; the key keeps mapping past records
    END IF;
    known := cs.resolve_customer(s.system, 'customer', o ->> 'id') IS NOT NULL;
    PERFORM cs._stripe_customer(s.system, o ->> 'id', o -> 'metadata' ->> (s.options ->> 'metadata_key'), o ->> 'email');
    RETURN CASE WHEN known THEN 'unchanged' ELSE 'inserted' END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_stripe_customer(cs.data_sources, jsonb) IS
    'Internal: loads one Stripe customer (object or customer.* event) into cs.customer_keys: its id maps to the customer of its metadata external_id or email domain.';

------------------------------------------------------------------------------
-- Chargebee
------------------------------------------------------------------------------

-- The resource of a Chargebee record: an event's content, a list entry or the bare object.
CREATE OR REPLACE FUNCTION cs._chargebee_part(p jsonb, part text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(p -> 'content') = 'object' THEN p -> 'content' -> part
                WHEN jsonb_typeof(p -> part) = 'object' THEN p -> part
                WHEN p ->> 'object' = part THEN p END
$$;
COMMENT ON FUNCTION cs._chargebee_part(jsonb, text) IS 'Internal: the resource (customer, subscription, invoice) of a Chargebee event''s content, list entry or bare object; NULL when absent.';

-- One Chargebee customer: learns its customer key.
CREATE OR REPLACE FUNCTION cs._ingest_chargebee_customer(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    o     jsonb := cs._chargebee_part(p, 'customer');
    known boolean;
BEGIN
    IF o IS NULL OR coalesce(o ->> 'id', '') = '' THEN
        PERFORM cs._unmappable('no Chargebee customer in the record (a customer object with an id)');
    END IF;
    IF (o ->> 'deleted')::boolean THEN
        RETURN 'unchanged';
    END IF;
    known := cs.resolve_customer(s.system, 'customer', o ->> 'id') IS NOT NULL;
    PERFORM cs._chargebee_customer(s, o ->> 'id', o);
    RETURN CASE WHEN known THEN 'unchanged' ELSE 'inserted' END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_chargebee_customer(cs.data_sources, jsonb) IS
    'Internal: loads one Chargebee customer (object, list entry or event) into cs.customer_keys by metadata external_id, the id itself as external_id, or email domain.';

-- One Chargebee subscription: history in cs.subscriptions, its term in cs.contract_terms.
CREATE OR REPLACE FUNCTION cs._ingest_chargebee_subscription(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    sub    jsonb := cs._chargebee_part(p, 'subscription');
    c      uuid;
    st     text;
    cur    text;
    items  jsonb := '[]';
    i      jsonb;
    qty    numeric;
    amt    numeric;
    mrr    numeric;
    at     timestamptz;
    ends   date;
BEGIN
    IF sub IS NULL OR coalesce(sub ->> 'id', '') = '' THEN
        PERFORM cs._unmappable('no Chargebee subscription in the record (a subscription object with an id)');
    END IF;
    c := cs._chargebee_customer(s, sub ->> 'customer_id', cs._chargebee_part(p, 'customer'));
    st := lower(sub ->> 'status');
    IF st IS NULL OR st NOT IN ('future', 'in_trial', 'active', 'non_renewing', 'paused', 'cancelled') THEN
        PERFORM cs._unmappable(format('unknown Chargebee subscription status "%s"', coalesce(sub ->> 'status', '(none)')));
    END IF;
    cur := coalesce(sub ->> 'currency_code', 'USD');
    -- Product catalog 2.0: subscription_items; 1.0: plan_id and addons
    FOR i IN
        SELECT x FROM jsonb_array_elements(coalesce(sub -> 'subscription_items', '[]')) x
         WHERE coalesce(x ->> 'item_type', 'plan') <> 'charge'
        UNION ALL
        SELECT jsonb_build_object('item_price_id', sub ->> 'plan_id', 'quantity', sub -> 'plan_quantity',
                                  'unit_price', sub -> 'plan_unit_price', 'amount', sub -> 'plan_amount')
         WHERE sub ? 'plan_id' AND NOT sub ? 'subscription_items'
        UNION ALL
        SELECT jsonb_build_object('item_price_id', a ->> 'id', 'quantity', a -> 'quantity', 'unit_price', a -> 'unit_price',
                                  'amount', a -> 'amount')
          FROM jsonb_array_elements(CASE WHEN sub ? 'subscription_items' THEN '[]' ELSE coalesce(sub -> 'addons', '[]') END) a
    LOOP
        IF coalesce(i ->> 'item_price_id', '') = '' THEN
            PERFORM cs._unmappable(format('subscription %s: an item has no item_price_id', sub ->> 'id'));
        END IF;
        qty := cs._number('quantity', coalesce(i ->> 'quantity', '1'));
        IF qty < 0 OR qty <> trunc(qty) OR qty >= 1e8 THEN
            PERFORM cs._unmappable(format('subscription %s: quantity %s is out of range', sub ->> 'id', qty));
        END IF;
        amt := coalesce(cs._number('amount', i ->> 'amount'), cs._number('unit_price', i ->> 'unit_price') * qty);
        IF amt IS NULL THEN
            PERFORM cs._unmappable(format('subscription %s: item %s has no amount or unit_price', sub ->> 'id', i ->> 'item_price_id'));
        ELSIF amt < 0 THEN
            PERFORM cs._unmappable(format('subscription %s: amount %s is out of range', sub ->> 'id', amt));
        END IF;
        mrr := CASE WHEN st = 'in_trial' THEN 0
                    ELSE cs._monthly(cs._stripe_amount(amt, cur),
                                     coalesce(i ->> 'billing_period_unit', sub ->> 'billing_period_unit', 'month'),
                                     cs._number('billing_period', coalesce(i ->> 'billing_period', sub ->> 'billing_period', '1'))) END;
        IF mrr >= 1e8 THEN
            PERFORM cs._unmappable(format('subscription %s: MRR %s is out of range', sub ->> 'id', round(mrr, 2)));
        END IF;
        items := items || jsonb_build_array(jsonb_build_object('product', i ->> 'item_price_id', 'seats', qty, 'mrr', mrr));
    END LOOP;
    IF items = '[]' AND st IN ('in_trial', 'active', 'non_renewing') THEN
        PERFORM cs._unmappable(format('subscription %s has no recurring items', sub ->> 'id'));
    END IF;
    at := coalesce(cs._unix_time('updated_at', sub ->> 'updated_at'), cs._unix_time('occurred_at', p ->> 'occurred_at'), now());
    ends := CASE WHEN st IN ('cancelled', 'non_renewing')
                 THEN cs._utc_day(coalesce(cs._unix_time('cancelled_at', sub ->> 'cancelled_at'),
                                           cs._unix_time('current_term_end', sub ->> 'current_term_end'), at)) END;
    RETURN cs._apply_subscription(s.name, c, sub ->> 'id', st, st IN ('in_trial', 'active', 'non_renewing'), st = 'cancelled',
                                  items, at,
                                  cs._utc_day(coalesce(cs._unix_time('started_at', sub ->> 'started_at'),
                                                       cs._unix_time('activated_at', sub ->> 'activated_at'),
                                                       cs._unix_time('created_at', sub ->> 'created_at'))),
                                  ends,
                                  cs._unix_time('current_term_start', sub ->> 'current_term_start'),
                                  cs._unix_time('current_term_end', sub ->> 'current_term_end'));
END;
$$;
COMMENT ON FUNCTION cs._ingest_chargebee_subscription(cs.data_sources, jsonb) IS
    'Internal: loads one Chargebee subscription (object, list entry or event) as history in cs.subscriptions (one row per item price: quantity as seats, amount per billing period as MRR) and its current term in cs.contract_terms.';

-- Chargebee invoice status (and dunning) as a cs.invoices status.
CREATE OR REPLACE FUNCTION cs._chargebee_invoice_status(status text, dunning text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    status := lower(btrim(status));
    IF status IS NULL OR status NOT IN ('paid', 'posted', 'payment_due', 'not_paid', 'voided', 'pending') THEN
        RAISE EXCEPTION 'unknown Chargebee invoice status "%"', coalesce(status, '(none)') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF dunning IS NOT NULL AND lower(dunning) NOT IN ('in_progress', 'exhausted', 'stopped', 'success') THEN
        RAISE EXCEPTION 'unknown Chargebee dunning status "%"', dunning USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN CASE status WHEN 'paid' THEN 'paid'
                       WHEN 'posted' THEN 'open'
                       -- collection attempted and failed (dunning retries it), else still awaiting payment
                       WHEN 'payment_due' THEN CASE WHEN dunning IS NOT NULL THEN 'failed' ELSE 'open' END
                       WHEN 'not_paid' THEN 'uncollectible'
                       WHEN 'voided' THEN 'void'
                       WHEN 'pending' THEN 'draft' END;
END;
$$;
COMMENT ON FUNCTION cs._chargebee_invoice_status(text, text) IS
    'Internal: Chargebee invoice status as a cs.invoices status: paid, posted = open, payment_due = failed under dunning (else open), not_paid = uncollectible, voided = void, pending = draft.';

-- One Chargebee invoice.
CREATE OR REPLACE FUNCTION cs._ingest_chargebee_invoice(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    inv    jsonb := cs._chargebee_part(p, 'invoice');
    c      uuid;
    status text;
    issued date;
BEGIN
    IF inv IS NULL OR coalesce(inv ->> 'id', '') = '' THEN
        PERFORM cs._unmappable('no Chargebee invoice in the record (an invoice object with an id)');
    END IF;
    c := cs._chargebee_customer(s, inv ->> 'customer_id', cs._chargebee_part(p, 'customer'));
    status := cs._chargebee_invoice_status(inv ->> 'status', inv ->> 'dunning_status');
    issued := cs._utc_day(cs._unix_time('date', inv ->> 'date'));
    RETURN cs._upsert_invoice(s.name, c, 'chargebee:' || (inv ->> 'id'),
                              cs._stripe_amount(cs._number('total', inv ->> 'total'), coalesce(inv ->> 'currency_code', 'USD')),
                              issued, cs._utc_day(cs._unix_time('due_date', inv ->> 'due_date')),
                              CASE WHEN status = 'paid' THEN coalesce(cs._utc_day(cs._unix_time('paid_at', inv ->> 'paid_at')), issued) END,
                              status);
END;
$$;
COMMENT ON FUNCTION cs._ingest_chargebee_invoice(cs.data_sources, jsonb) IS
    'Internal: loads one Chargebee invoice (object, list entry or event) into cs.invoices as external_id chargebee:<id>; total in minor units, status and dunning status mapped by cs._chargebee_invoice_status.';
