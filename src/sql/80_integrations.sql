-- Integrations: loaders for what real tools export (Stripe, Zendesk, HubSpot,
-- Mixpanel, Amplitude, any CSV with a column mapping).  Every loader maps
-- into the canonical signal tables idempotently (an upsert on the source's
-- id that leaves unchanged rows alone), resolves customers by external_id or
-- through cs.customer_keys, and puts what it cannot load into
-- cs.ingest_rejects with the reason: nothing is dropped silently.

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- The customer a key of a system maps to: the system's own mapping, then a
-- mapping valid for any system, then (for external_id) cs.customers itself.
CREATE OR REPLACE FUNCTION cs.resolve_customer(source text, key_kind text, key text)
RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
SELECT coalesce(
    (SELECT k.customer_id FROM cs.customer_keys k
      WHERE k.source = resolve_customer.source AND k.key_kind = resolve_customer.key_kind AND k.key = resolve_customer.key),
    (SELECT k.customer_id FROM cs.customer_keys k
      WHERE k.source = 'any' AND k.key_kind = resolve_customer.key_kind AND k.key = resolve_customer.key),
    CASE resolve_customer.key_kind
         WHEN 'external_id' THEN (SELECT c.id FROM cs.customers c WHERE c.external_id = resolve_customer.key)
         -- Two customers with one domain are a duplicate (see cs.data_quality): the oldest wins meanwhile.
         WHEN 'domain' THEN (SELECT c.id FROM cs.customers c WHERE c.domain = lower(resolve_customer.key)
                              ORDER BY c.created_at, c.id LIMIT 1) END)
$$;
COMMENT ON FUNCTION cs.resolve_customer(text, text, text) IS
    'Customer a key maps to: cs.customer_keys under the system, then under any, then cs.customers.external_id (key_kind external_id) or cs.customers.domain (key_kind domain); NULL when unknown.';

-- Lower-case domain of an email address or URL, without www.
CREATE OR REPLACE FUNCTION cs.domain_of(address text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT nullif(regexp_replace(lower(btrim(
           CASE WHEN address LIKE '%@%' THEN split_part(address, '@', 2)
                ELSE split_part(regexp_replace(address, '^[a-zA-Z]+://', ''), '/', 1) END)), '^www\.', ''), '')
$$;
COMMENT ON FUNCTION cs.domain_of(text) IS 'Lower-case domain of an email address or URL (without www.), NULL when empty.';

-- A company name reduced for comparison: lower case, only letters and
-- digits, common legal suffixes dropped ("ACME, Inc." = "Acme Inc" = "acme").
CREATE OR REPLACE FUNCTION cs.normalise_name(name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT nullif(regexp_replace(
           regexp_replace(lower(name), '[^a-z0-9]+', ' ', 'g'),
           '(\s(inc|incorporated|llc|ltd|limited|gmbh|corp|corporation|co|company|sa|sas|ag|plc|bv|nv|pty|srl|oy|ab))+\s*$|\s+', '', 'g'), '')
$$;
COMMENT ON FUNCTION cs.normalise_name(text) IS 'Company name reduced for duplicate detection: lower case, letters and digits only, trailing legal suffixes (inc, llc, ltd, gmbh, ...) removed.';

-- Text to timestamptz for the formats exports use (ISO 8601, "YYYY-MM-DD HH:MI[:SS]"
-- read as UTC, unix seconds); NULL for empty text, an error for anything else.
CREATE OR REPLACE FUNCTION cs._parse_time(v text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
BEGIN
    v := nullif(btrim(v), '');
    IF v IS NULL THEN
        RETURN NULL;
    ELSIF v ~ '^[0-9]{9,11}$' THEN
        RETURN to_timestamp(v::float8);
    ELSIF v !~ '^[0-9]' THEN
        -- not a date at all (and not one of the words now, today, infinity, epoch)
        RAISE EXCEPTION 'invalid time "%"', v USING ERRCODE = 'invalid_datetime_format';
    ELSIF v ~ '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$' THEN
        RETURN v::timestamptz;
    END IF;
    RETURN (v::timestamp) AT TIME ZONE 'UTC';
EXCEPTION WHEN data_exception OR invalid_text_representation OR datetime_field_overflow THEN
    RAISE EXCEPTION 'invalid time "%"', v USING ERRCODE = 'invalid_datetime_format';
END;
$$;
COMMENT ON FUNCTION cs._parse_time(text) IS 'Internal: a time as exports write it (ISO 8601 with zone, UTC without one, or unix seconds); NULL when empty.';

-- A time that cannot be right: before 2000 or more than a day ahead.
CREATE OR REPLACE FUNCTION cs._check_time(what text, t timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF t < '2000-01-01' OR t > now() + interval '1 day' THEN
        RAISE EXCEPTION '% % is out of range', what, t USING ERRCODE = 'datetime_field_overflow';
    END IF;
    RETURN t;
END;
$$;
COMMENT ON FUNCTION cs._check_time(text, timestamptz) IS 'Internal: the time unchanged, or an out-of-range error when it is before 2000 or more than a day in the future.';

-- Records a key of a system for a customer, unless it maps elsewhere already.
-- The look-up first keeps one customer per key where no unique index across
-- customers does (Citus: the primary key holds customer_id); on a single node
-- customer_keys_key_global_key stops a concurrent learner of the same key.
CREATE OR REPLACE FUNCTION cs._learn_key(source text, key_kind text, key text, customer_id uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    IF _learn_key.key IS NULL OR _learn_key.customer_id IS NULL
       OR EXISTS (SELECT 1 FROM cs.customer_keys k
                   WHERE k.source = _learn_key.source AND k.key_kind = _learn_key.key_kind AND k.key = _learn_key.key) THEN
        RETURN;
    END IF;
    INSERT INTO cs.customer_keys (source, key_kind, key, customer_id)
    VALUES (_learn_key.source, _learn_key.key_kind, _learn_key.key, _learn_key.customer_id)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION cs._learn_key(text, text, text, uuid) IS 'Internal: records a key of a system for a customer unless the key is mapped already (to any customer).';

-- Counts rows received by a source in the current hour.
CREATE OR REPLACE FUNCTION cs._note_activity(source text, accepted bigint, rejected bigint)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, cs
AS $$
    INSERT INTO cs.source_activity AS a (source, hour, accepted, rejected, last_at)
    SELECT _note_activity.source, date_trunc('hour', now()), _note_activity.accepted, _note_activity.rejected, now()
     WHERE _note_activity.accepted + _note_activity.rejected > 0
    ON CONFLICT (source, hour) DO UPDATE
       SET accepted = a.accepted + excluded.accepted, rejected = a.rejected + excluded.rejected, last_at = excluded.last_at;
$$;
COMMENT ON FUNCTION cs._note_activity(text, bigint, bigint) IS 'Internal: adds received rows to cs.source_activity for the current hour.';

-- Stores a rejected record (once per distinct payload).
CREATE OR REPLACE FUNCTION cs._reject(source text, payload jsonb, reason text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, cs
AS $$
    INSERT INTO cs.ingest_rejects AS r (source, payload, reason)
    VALUES (_reject.source, _reject.payload, _reject.reason)
    ON CONFLICT (source, payload_hash) DO UPDATE
       SET reason = excluded.reason, received_at = excluded.received_at, times_seen = r.times_seen + 1;
$$;
COMMENT ON FUNCTION cs._reject(text, jsonb, text) IS 'Internal: records a rejected record with its reason; a reload of the same record counts times_seen.';

-- The loading source, or an error when it is unknown or disabled.
CREATE OR REPLACE FUNCTION cs._source(name text)
RETURNS cs.data_sources
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    s cs.data_sources;
BEGIN
    SELECT * INTO s FROM cs.data_sources d WHERE d.name = _source.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown data source "%"', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name, format FROM cs.data_sources lists the sources; add others there.';
    END IF;
    IF NOT s.enabled THEN
        RAISE EXCEPTION 'data source "%" is disabled', name USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN s;
END;
$$;
COMMENT ON FUNCTION cs._source(text) IS 'Internal: the cs.data_sources row of a source, or an error when it is unknown or disabled.';

-- The error a loader raises for a record it cannot map.
CREATE OR REPLACE FUNCTION cs._unmappable(reason text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '%', reason USING ERRCODE = 'invalid_parameter_value';
END;
$$;
COMMENT ON FUNCTION cs._unmappable(text) IS 'Internal: raises the error that turns a record into a reject with the given reason.';

-- A numeric field of a record, or an out-of-range error when it is not a number.
CREATE OR REPLACE FUNCTION cs._number(what text, v text)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    v := nullif(replace(btrim(v), ',', ''), '');
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    IF v !~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$' THEN
        RAISE EXCEPTION '% "%" is not a number', what, v USING ERRCODE = 'invalid_text_representation';
    END IF;
    RETURN v::numeric;
END;
$$;
COMMENT ON FUNCTION cs._number(text, text) IS 'Internal: a number field (thousands separators allowed), NULL when empty, an error when not a number.';

------------------------------------------------------------------------------
-- Per-format loaders of one record.  Each returns inserted, updated or
-- unchanged, or raises an error whose message becomes the reject reason.
------------------------------------------------------------------------------

-- Upserts an invoice on its external id; the common end of both Stripe formats.
CREATE OR REPLACE FUNCTION cs._upsert_invoice(src text, customer_id uuid, external_id text, amount numeric, issued_at date,
                                   due_date date, paid_at date, status text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    ins   boolean;
    moved boolean;
BEGIN
    IF amount IS NULL THEN
        PERFORM cs._unmappable('no amount');
    ELSIF amount < 0 THEN
        PERFORM cs._unmappable(format('amount %s is out of range (negative: a credit note, not an invoice)', amount));
    ELSIF amount >= 1e10 THEN
        PERFORM cs._unmappable(format('amount %s is out of range', amount));
    END IF;
    IF issued_at IS NULL THEN
        PERFORM cs._unmappable('no invoice date');
    END IF;
    PERFORM cs._check_time('invoice date', issued_at);
    -- An invoice of another customer in the source moves: deleted there, inserted here (one update).
    DELETE FROM cs.invoices i WHERE i.external_id = _upsert_invoice.external_id AND i.customer_id <> _upsert_invoice.customer_id;
    moved := FOUND;
    INSERT INTO cs.invoices AS i (customer_id, external_id, amount, issued_at, due_date, paid_at, status, source)
    VALUES (customer_id, external_id, amount, issued_at, coalesce(due_date, issued_at), paid_at, status, src)
    ON CONFLICT ON CONSTRAINT invoices_external_id_key DO UPDATE
       SET amount = excluded.amount, issued_at = excluded.issued_at,
           due_date = excluded.due_date, paid_at = excluded.paid_at, status = excluded.status, source = excluded.source
     WHERE (i.amount, i.issued_at, i.due_date, i.paid_at, i.status)
           IS DISTINCT FROM (excluded.amount, excluded.issued_at, excluded.due_date, excluded.paid_at, excluded.status)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN moved THEN 'updated' WHEN ins IS NULL THEN 'unchanged' WHEN ins THEN 'inserted' ELSE 'updated' END;
END;
$$;
COMMENT ON FUNCTION cs._upsert_invoice(text, uuid, text, numeric, date, date, date, text) IS
    'Internal: range checks and upserts an invoice on its external id and customer (an invoice that moved to another customer is deleted under the old one first); returns inserted, updated or unchanged.';

-- The customer of a Stripe invoice: the Stripe customer id mapping, the
-- metadata key holding our external_id, then the email domain.  A match by
-- metadata or domain is remembered for the Stripe customer id.
CREATE OR REPLACE FUNCTION cs._stripe_customer(sys text, stripe_customer text, meta_external_id text, email text)
RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c uuid;
BEGIN
    c := cs.resolve_customer(sys, 'customer', stripe_customer);
    IF c IS NULL AND meta_external_id IS NOT NULL THEN
        c := cs.resolve_customer(sys, 'external_id', meta_external_id);
    END IF;
    IF c IS NULL AND email IS NOT NULL THEN
        c := cs.resolve_customer(sys, 'domain', cs.domain_of(email));
    END IF;
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: Stripe customer %s (metadata external_id %s, email %s) maps to no customer',
                                      coalesce(stripe_customer, '(none)'), coalesce(meta_external_id, '(none)'), coalesce(email, '(none)')));
    END IF;
    PERFORM cs._learn_key(sys, 'customer', stripe_customer, c);
    RETURN c;
END;
$$;
COMMENT ON FUNCTION cs._stripe_customer(text, text, text, text) IS
    'Internal: customer of a Stripe invoice by Stripe customer id mapping, metadata external_id or email domain; remembers the Stripe id.';

-- Stripe amounts are in the smallest currency unit, except for zero-decimal currencies.
CREATE OR REPLACE FUNCTION cs._stripe_amount(minor numeric, currency text)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN lower(currency) IN ('bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf',
                                     'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf')
            THEN minor ELSE round(minor / 100, 2) END
$$;
COMMENT ON FUNCTION cs._stripe_amount(numeric, text) IS 'Internal: a Stripe amount in minor units as a major-unit amount (zero-decimal currencies unchanged).';

-- Stripe invoice status to cs.invoices status: an open invoice whose payment was attempted has failed.
CREATE OR REPLACE FUNCTION cs._stripe_status(status text, attempted boolean)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    status := lower(btrim(status));
    IF status NOT IN ('draft', 'open', 'paid', 'void', 'uncollectible') THEN
        RAISE EXCEPTION 'unknown Stripe invoice status "%"', status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN CASE WHEN status = 'open' AND coalesce(attempted, false) THEN 'failed' ELSE status END;
END;
$$;
COMMENT ON FUNCTION cs._stripe_status(text, boolean) IS 'Internal: Stripe invoice status as a cs.invoices status (open and attempted = failed).';

-- One Stripe invoice object (API shape).
CREATE OR REPLACE FUNCTION cs._ingest_stripe_invoice(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c      uuid;
    status text;
    issued date;
BEGIN
    IF p ->> 'object' IS DISTINCT FROM 'invoice' OR coalesce(p ->> 'id', '') = '' THEN
        PERFORM cs._unmappable('not a Stripe invoice object (object must be "invoice" with an id)');
    END IF;
    c := cs._stripe_customer(s.system, p ->> 'customer', p -> 'metadata' ->> (s.options ->> 'metadata_key'), p ->> 'customer_email');
    status := cs._stripe_status(p ->> 'status', (p ->> 'attempted')::boolean AND coalesce((p ->> 'attempt_count')::int, 0) > 0);
    issued := (to_timestamp((p ->> 'created')::float8) AT TIME ZONE 'UTC')::date;
    RETURN cs._upsert_invoice(s.name, c, p ->> 'id',
                              cs._stripe_amount(cs._number('total', coalesce(p ->> 'total', p ->> 'amount_due')), coalesce(p ->> 'currency', 'usd')),
                              issued,
                              (to_timestamp((p ->> 'due_date')::float8) AT TIME ZONE 'UTC')::date,
                              CASE WHEN status = 'paid'
                                   THEN coalesce((to_timestamp((p -> 'status_transitions' ->> 'paid_at')::float8) AT TIME ZONE 'UTC')::date, issued) END,
                              status);
END;
$$;
COMMENT ON FUNCTION cs._ingest_stripe_invoice(cs.data_sources, jsonb) IS 'Internal: loads one Stripe invoice object (API shape) into cs.invoices.';

-- One row of the Stripe Dashboard invoice export (CSV headers as keys; amounts in major units).
CREATE OR REPLACE FUNCTION cs._ingest_stripe_invoice_csv(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c      uuid;
    status text;
    issued date;
    paid   boolean := lower(coalesce(p ->> 'Paid', '')) IN ('true', 't', 'yes', '1');
BEGIN
    IF coalesce(p ->> 'id', '') = '' THEN
        PERFORM cs._unmappable('no id column (not a Stripe invoice export row)');
    END IF;
    c := cs._stripe_customer(s.system, nullif(p ->> 'Customer', ''),
                             nullif(p ->> ((s.options ->> 'metadata_key') || ' (metadata)'), ''), nullif(p ->> 'Customer Email', ''));
    status := CASE WHEN nullif(p ->> 'Status', '') IS NOT NULL
                   THEN cs._stripe_status(p ->> 'Status', cs._number('Attempt Count', p ->> 'Attempt Count') > 0)
                   WHEN paid THEN 'paid'
                   ELSE 'open' END;
    issued := cs._parse_time(p ->> 'Date (UTC)')::date;
    RETURN cs._upsert_invoice(s.name, c, p ->> 'id', cs._number('Total', coalesce(nullif(p ->> 'Total', ''), p ->> 'Amount Due')),
                              issued, cs._parse_time(p ->> 'Due Date (UTC)')::date,
                              CASE WHEN status = 'paid' THEN coalesce(cs._parse_time(p ->> 'Paid At (UTC)')::date, issued) END,
                              status);
END;
$$;
COMMENT ON FUNCTION cs._ingest_stripe_invoice_csv(cs.data_sources, jsonb) IS 'Internal: loads one row of the Stripe Dashboard invoice export into cs.invoices.';

-- One Zendesk ticket object (API shape).
CREATE OR REPLACE FUNCTION cs._ingest_zendesk_ticket(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    c       uuid;
    st      text := lower(p ->> 'status');
    pr      text := coalesce(lower(p ->> 'priority'), 'normal');
    opened  timestamptz;
    closed  timestamptz;
    v_csat  smallint;
    ins     boolean;
    moved   boolean;
BEGIN
    IF coalesce(p ->> 'id', '') = '' OR p ->> 'created_at' IS NULL THEN
        PERFORM cs._unmappable('not a Zendesk ticket (id and created_at are required)');
    END IF;
    c := cs.resolve_customer(s.system, 'organization', p ->> 'organization_id');
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: Zendesk organization %s maps to no customer',
                                      coalesce(p ->> 'organization_id', '(none)')));
    END IF;
    st := CASE st WHEN 'hold' THEN 'on_hold' ELSE st END;
    IF st IS NULL OR st NOT IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed') THEN
        PERFORM cs._unmappable(format('unknown Zendesk status "%s"', p ->> 'status'));
    END IF;
    IF pr NOT IN ('low', 'normal', 'high', 'urgent') THEN
        PERFORM cs._unmappable(format('unknown Zendesk priority "%s"', p ->> 'priority'));
    END IF;
    opened := cs._check_time('created_at', cs._parse_time(p ->> 'created_at'));
    IF st IN ('solved', 'closed') THEN
        closed := coalesce(cs._parse_time(p ->> 'solved_at'), cs._parse_time(p -> 'metric_set' ->> 'solved_at'),
                           cs._parse_time(p ->> 'updated_at'));
    END IF;
    v_csat := CASE p -> 'satisfaction_rating' ->> 'score' WHEN 'good' THEN 5 WHEN 'bad' THEN 1 END;
    -- A ticket of another organization's customer in the source moves: deleted there, inserted here.
    DELETE FROM cs.support_tickets t WHERE t.external_id = 'zendesk:' || (p ->> 'id') AND t.customer_id <> c;
    moved := FOUND;
    INSERT INTO cs.support_tickets AS t (customer_id, external_id, opened_at, closed_at, priority, status, csat, subject, body, source)
    VALUES (c, 'zendesk:' || (p ->> 'id'), opened, closed, pr, st, v_csat, p ->> 'subject', p ->> 'description', s.name)
    ON CONFLICT ON CONSTRAINT support_tickets_external_id_key DO UPDATE
       SET opened_at = excluded.opened_at, closed_at = excluded.closed_at,
           priority = excluded.priority, status = excluded.status, csat = excluded.csat, subject = excluded.subject,
           body = excluded.body, source = excluded.source
     WHERE (t.opened_at, t.closed_at, t.priority, t.status, t.csat, t.subject, t.body)
           IS DISTINCT FROM (excluded.opened_at, excluded.closed_at, excluded.priority,
                             excluded.status, excluded.csat, excluded.subject, excluded.body)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN moved THEN 'updated' WHEN ins IS NULL THEN 'unchanged' WHEN ins THEN 'inserted' ELSE 'updated' END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_zendesk_ticket(cs.data_sources, jsonb) IS
    'Internal: loads one Zendesk ticket (API shape) into cs.support_tickets as external_id zendesk:<id>; customer by organization mapping.';

-- A HubSpot employee count as a size band.
CREATE OR REPLACE FUNCTION cs._size_band(employees numeric)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN employees IS NULL THEN NULL
            WHEN employees <= 10 THEN '1-10' WHEN employees <= 50 THEN '11-50'
            WHEN employees <= 200 THEN '51-200' WHEN employees <= 500 THEN '201-500'
            WHEN employees <= 1000 THEN '501-1000' WHEN employees <= 5000 THEN '1001-5000'
            ELSE '5001+' END
$$;
COMMENT ON FUNCTION cs._size_band(numeric) IS 'Internal: employee count as a size band (1-10, 11-50, ..., 5001+).';

-- One row of the HubSpot companies export: creates or updates the customer.
CREATE OR REPLACE FUNCTION cs._ingest_hubspot_company(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    rid    text := nullif(btrim(p ->> 'Record ID'), '');
    nm     text := nullif(btrim(p ->> 'Company name'), '');
    dom    text := cs.domain_of(coalesce(p ->> 'Company Domain Name', p ->> 'Website URL'));
    v_emp    numeric := cs._number('Number of Employees', p ->> 'Number of Employees');
    v_mrr    numeric := cs._number('MRR', p ->> 'MRR');
    v_start date := cs._parse_time(p ->> 'Contract Start Date')::date;
    v_end   date := cs._parse_time(coalesce(p ->> 'Contract End Date', p ->> 'Renewal Date'))::date;
    c      uuid;
    res    text;
BEGIN
    IF rid IS NULL THEN
        PERFORM cs._unmappable('no Record ID');
    END IF;
    IF nm IS NULL THEN
        PERFORM cs._unmappable(format('company %s has no name', rid));
    END IF;
    IF v_emp < 0 OR v_emp >= 1e8 THEN
        PERFORM cs._unmappable(format('company %s: Number of Employees %s is out of range', rid, v_emp));
    END IF;
    IF v_mrr < 0 OR v_mrr >= 1e8 THEN
        PERFORM cs._unmappable(format('company %s: MRR %s is out of range', rid, v_mrr));
    END IF;
    IF v_end < v_start THEN
        PERFORM cs._unmappable(format('company %s: contract end %s before start %s', rid, v_end, v_start));
    END IF;
    c := coalesce(cs.resolve_customer(s.system, 'company', rid), cs.resolve_customer(s.system, 'external_id', rid));
    IF c IS NULL THEN
        INSERT INTO cs.customers (external_id, name, industry, size, mrr, contract_start_date, contract_end_date, domain)
        VALUES (rid, nm, nullif(p ->> 'Industry', ''), cs._size_band(v_emp), v_mrr, v_start, v_end, dom)
        RETURNING id INTO c;
        res := 'inserted';
    ELSE
        UPDATE cs.customers u
           SET name = nm, industry = coalesce(nullif(p ->> 'Industry', ''), u.industry),
               size = coalesce(cs._size_band(v_emp), u.size), mrr = coalesce(v_mrr, u.mrr),
               contract_start_date = coalesce(v_start, u.contract_start_date),
               contract_end_date = coalesce(v_end, u.contract_end_date), domain = coalesce(dom, u.domain)
         WHERE u.id = c
           AND (u.name, u.industry, u.size, u.mrr, u.contract_start_date, u.contract_end_date, u.domain)
               IS DISTINCT FROM (nm, coalesce(nullif(p ->> 'Industry', ''), u.industry), coalesce(cs._size_band(v_emp), u.size),
                                 coalesce(v_mrr, u.mrr), coalesce(v_start, u.contract_start_date), coalesce(v_end, u.contract_end_date),
                                 coalesce(dom, u.domain));
        res := CASE WHEN FOUND THEN 'updated' ELSE 'unchanged' END;
    END IF;
    PERFORM cs._learn_key(s.system, 'company', rid, c);
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs._ingest_hubspot_company(cs.data_sources, jsonb) IS
    'Internal: loads one row of the HubSpot companies export: creates the customer (external_id = Record ID, domain from Company Domain Name) or updates it, and learns its company id.';

-- One row of the HubSpot contacts export.
CREATE OR REPLACE FUNCTION cs._ingest_hubspot_contact(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    rid   text := nullif(btrim(p ->> 'Record ID'), '');
    v_email text := nullif(lower(btrim(p ->> 'Email')), '');
    comp  text := nullif(btrim(split_part(coalesce(p ->> 'Associated Company IDs (Primary)', p ->> 'Associated Company IDs',
                                                   p ->> 'Associated Company ID', ''), ';', 1)), '');
    nm    text := nullif(btrim(concat_ws(' ', nullif(btrim(p ->> 'First Name'), ''), nullif(btrim(p ->> 'Last Name'), ''))), '');
    c     uuid;
    ins   boolean;
    moved boolean;
BEGIN
    IF rid IS NULL THEN
        PERFORM cs._unmappable('no Record ID');
    END IF;
    IF v_email IS NOT NULL AND v_email !~ '^[^@[:space:]]+@[^@[:space:]]+$' THEN
        PERFORM cs._unmappable(format('contact %s: invalid email "%s"', rid, v_email));
    END IF;
    c := cs.resolve_customer(s.system, 'company', comp);
    IF c IS NULL AND v_email IS NOT NULL THEN
        c := cs.resolve_customer(s.system, 'domain', cs.domain_of(v_email));
    END IF;
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: contact %s (company %s, email %s) maps to no customer',
                                      rid, coalesce(comp, '(none)'), coalesce(v_email, '(none)')));
    END IF;
    -- A contact that moved to another company in the source: deleted under the old customer, inserted here.
    DELETE FROM cs.contacts t WHERE t.source = s.name AND t.source_id = rid AND t.customer_id <> c;
    moved := FOUND;
    INSERT INTO cs.contacts AS t (customer_id, name, email, role, source, source_id)
    VALUES (c, coalesce(nm, v_email, 'contact ' || rid), v_email, nullif(btrim(p ->> 'Job Title'), ''), s.name, rid)
    ON CONFLICT (source, source_id, customer_id) WHERE source IS NOT NULL DO UPDATE
       SET name = excluded.name, email = excluded.email, role = excluded.role
     WHERE (t.name, t.email, t.role) IS DISTINCT FROM (excluded.name, excluded.email, excluded.role)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN moved THEN 'updated' WHEN ins IS NULL THEN 'unchanged' WHEN ins THEN 'inserted' ELSE 'updated' END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_hubspot_contact(cs.data_sources, jsonb) IS
    'Internal: loads one row of the HubSpot contacts export into cs.contacts; customer by associated company id, then email domain.';

-- Validates the options of a csv source: target table and mapping.
CREATE OR REPLACE FUNCTION cs._check_csv_options(s cs.data_sources)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    bad text;
    tgt text := s.options ->> 'target';
    m   jsonb := s.options -> 'mapping';
BEGIN
    IF tgt IS NULL OR tgt NOT IN ('customers', 'usage_events', 'support_tickets', 'invoices', 'engagements',
                                  'nps_responses', 'contacts', 'subscriptions', 'contract_terms') THEN
        RAISE EXCEPTION 'csv source "%": options.target must be a signal table, not %', s.name, coalesce(tgt, 'missing')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'One of customers, usage_events, support_tickets, invoices, engagements, nps_responses, contacts, subscriptions, contract_terms.';
    END IF;
    IF jsonb_typeof(m) IS DISTINCT FROM 'object' OR EXISTS (SELECT 1 FROM jsonb_each(m) e WHERE jsonb_typeof(e.value) <> 'string') THEN
        RAISE EXCEPTION 'csv source "%": options.mapping must be an object {"column": "CSV header"}', s.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO bad FROM jsonb_object_keys(m) k
     WHERE k IN ('id', 'customer_id', 'source', 'created_at', 'updated_at')
        OR NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = format('cs.%I', tgt)::regclass AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'csv source "%": cs.% has no loadable column "%"', s.name, tgt, bad
            USING ERRCODE = 'undefined_column',
                  HINT = 'Map target columns to headers; the customer comes from options.customer, the source from the source name.';
    END IF;
    IF s.options ? 'values' AND jsonb_typeof(s.options -> 'values') IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'csv source "%": options.values must be an object {"column": {"source word": "our word"}}', s.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF tgt = 'customers' THEN
        IF NOT m ? 'external_id' OR NOT m ? 'name' THEN
            RAISE EXCEPTION 'csv source "%": loading customers needs external_id and name in the mapping', s.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        IF s.options ->> 'customer' IS NULL THEN
            RAISE EXCEPTION 'csv source "%": options.customer must name the header holding the customer key', s.name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF tgt IN ('support_tickets', 'invoices') AND NOT m ? 'external_id' THEN
            RAISE EXCEPTION 'csv source "%": loading % needs external_id in the mapping (rows are upserted on it)', s.name, tgt
                USING ERRCODE = 'invalid_parameter_value';
        ELSIF tgt NOT IN ('support_tickets', 'invoices') AND NOT m ? 'source_id' THEN
            RAISE EXCEPTION 'csv source "%": loading % needs source_id in the mapping (rows are upserted on it)', s.name, tgt
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
END;
$$;
COMMENT ON FUNCTION cs._check_csv_options(cs.data_sources) IS 'Internal: errors when a csv source''s target or mapping is unusable.';

-- One row of a generic CSV: mapped columns, converted by the table's types.
CREATE OR REPLACE FUNCTION cs._ingest_csv(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    tgt   text := s.options ->> 'target';
    m     jsonb := s.options -> 'mapping';
    rec   jsonb;
    cols  text[];
    c     uuid;
    ckey  text;
    conflict text;
    setl  text;
    ins   boolean;
    existed boolean;
    moved boolean := false;
    gone  bigint;
    same  text;
    kept  text[];
BEGIN
    -- Mapped, checked against vocabularies, missing headers refused (src/sql/84_source_fields.sql).
    SELECT jsonb_object_agg(e.key, cs._csv_value(s, e.key, e.value, p)), array_agg(e.key ORDER BY e.key)
      INTO rec, cols
      FROM jsonb_each_text(m) e;
    IF tgt <> 'customers' THEN
        ckey := nullif(btrim(p ->> (s.options ->> 'customer')), '');
        c := cs.resolve_customer(s.system, coalesce(s.options ->> 'customer_key_kind', 'external_id'), ckey);
        IF c IS NULL THEN
            PERFORM cs._unmappable(format('unknown customer: %s "%s" maps to no customer',
                                          s.options ->> 'customer', coalesce(ckey, '(empty)')));
        END IF;
        rec := rec || jsonb_build_object('customer_id', c);
        cols := cols || ARRAY['customer_id'];
        IF tgt NOT IN ('support_tickets', 'invoices') AND rec ->> 'source_id' IS NULL THEN
            PERFORM cs._unmappable(format('no source id in "%s"', m ->> 'source_id'));
        END IF;
        rec := rec || jsonb_build_object('source', s.name);
        cols := cols || ARRAY['source'];
    END IF;
    -- Every key holds the customer (Citus distributes by it): a customer is
    -- upserted on its id, found by external_id first; a row on its source's
    -- id and the customer.  The same source row under another customer
    -- moved: it is deleted there first and counted as one update.
    IF tgt = 'customers' THEN
        SELECT c2.id INTO c FROM cs.customers c2 WHERE c2.external_id = rec ->> 'external_id';
        IF FOUND THEN
            rec := rec || jsonb_build_object('id', c);
            cols := cols || ARRAY['id'];
        END IF;
    END IF;
    conflict := CASE tgt WHEN 'customers' THEN '(id)'
                         WHEN 'support_tickets' THEN 'ON CONSTRAINT support_tickets_external_id_key'
                         WHEN 'invoices' THEN 'ON CONSTRAINT invoices_external_id_key'
                         WHEN 'usage_events' THEN '(source, source_id, occurred_at, customer_id) WHERE source IS NOT NULL'
                         -- subscriptions keep history (src/sql/schema/82_billing.sql)
                         WHEN 'subscriptions' THEN 'ON CONSTRAINT subscriptions_source_key'
                         -- a customer's terms are keyed by their start
                         WHEN 'contract_terms' THEN '(customer_id, term_start)'
                         ELSE '(source, source_id, customer_id) WHERE source IS NOT NULL' END;
    -- the columns that say which row it is in the source (NULL: none)
    same := CASE tgt WHEN 'support_tickets' THEN 'external_id = $1 ->> ''external_id'''
                     WHEN 'invoices' THEN 'external_id = $1 ->> ''external_id'''
                     WHEN 'usage_events' THEN 'source = $1 ->> ''source'' AND source_id = $1 ->> ''source_id'' AND occurred_at = ($1 ->> ''occurred_at'')::timestamptz'
                     WHEN 'subscriptions' THEN 'source = $1 ->> ''source'' AND source_id = $1 ->> ''source_id'' AND product = $1 ->> ''product'' AND started_at = ($1 ->> ''started_at'')::date'
                     WHEN 'customers' THEN NULL
                     WHEN 'contract_terms' THEN NULL
                     ELSE 'source = $1 ->> ''source'' AND source_id = $1 ->> ''source_id''' END;
    -- A partitioned table has no xmax to RETURN: look for the event first.
    IF tgt = 'usage_events' THEN
        existed := EXISTS (SELECT 1 FROM cs.usage_events e
                            WHERE e.source = s.name AND e.source_id = rec ->> 'source_id'
                              AND e.occurred_at = (rec ->> 'occurred_at')::timestamptz AND e.customer_id = c);
    END IF;
    IF same IS NOT NULL THEN
        EXECUTE format('DELETE FROM cs.%I WHERE %s AND customer_id <> ($1 ->> ''customer_id'')::uuid', tgt, same) USING rec;
        GET DIAGNOSTICS gone = ROW_COUNT;
        moved := gone > 0;
    END IF;
    -- The row's key is never updated (customer_id, the distribution column, least of all).
    kept := ARRAY(SELECT x FROM unnest(cols) x WHERE x NOT IN ('id', 'customer_id'));
    SELECT string_agg(format('%I = excluded.%I', x, x), ', ') INTO setl FROM unnest(kept) x;
    EXECUTE format('INSERT INTO cs.%1$I AS t (%2$s) SELECT %2$s FROM jsonb_populate_record(NULL::cs.%1$I, $1)
                    ON CONFLICT %3$s DO UPDATE SET %4$s
                    WHERE (%5$s) IS DISTINCT FROM (%6$s)
                    RETURNING %7$s',
                   tgt,
                   (SELECT string_agg(format('%I', x), ', ') FROM unnest(cols) x),
                   conflict, setl,
                   (SELECT string_agg(format('t.%I', x), ', ') FROM unnest(kept) x),
                   (SELECT string_agg(format('excluded.%I', x), ', ') FROM unnest(kept) x),
                   CASE WHEN tgt = 'usage_events' THEN 'true' ELSE '(xmax = 0)' END)
       INTO ins USING rec;
    IF ins IS NOT NULL AND tgt = 'usage_events' THEN
        ins := NOT existed;
    END IF;
    RETURN CASE WHEN moved THEN 'updated' WHEN ins IS NULL THEN 'unchanged' WHEN ins THEN 'inserted' ELSE 'updated' END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_csv(cs.data_sources, jsonb) IS
    'Internal: loads one row of a generic CSV into the source''s target table through its mapping and value mapping (values converted by the column types, constraints checked; a mapped header missing from the batch rejects the row); upserts a customer on its id found by external_id, other rows on external_id or (source, source_id) with the customer; a row that moved to another customer in the source is deleted under the old one first and counted as updated.';

------------------------------------------------------------------------------
-- Events (the hot path: parsed in C)
------------------------------------------------------------------------------

-- A line as jsonb, or as a JSON string when it is not valid JSON.
CREATE OR REPLACE FUNCTION cs._jsonb_or_string(line text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RETURN line::jsonb;
EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR character_not_in_repertoire THEN
    RETURN to_jsonb(line);
END;
$$;
COMMENT ON FUNCTION cs._jsonb_or_string(text) IS 'Internal: a text as jsonb, or as a JSON string when it does not parse.';

CREATE OR REPLACE FUNCTION cs.parse_events(format text, lines text, customer_property text DEFAULT 'company_id',
                                feature_property text DEFAULT 'feature',
                                OUT line int, OUT customer_key text, OUT user_id text, OUT event text,
                                OUT feature text, OUT quantity float8, OUT occurred_at timestamptz,
                                OUT source_id text, OUT error text, OUT raw text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cs_parse_events'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs.parse_events(text, text, text, text) IS
    'Parses a chunk of Mixpanel or Amplitude NDJSON export: one row per non-blank line with the event fields, or error saying why the line cannot be loaded; raw is the line itself.';

-- Loads a chunk of NDJSON events of a mixpanel or amplitude source.
CREATE OR REPLACE FUNCTION cs.ingest_events(source text, lines text)
RETURNS cs.ingest_result
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
#variable_conflict use_column
DECLARE
    s     cs.data_sources := cs._source(source);
    res   cs.ingest_result := (0, 0, 0, 0)::cs.ingest_result;
    n     bigint;
    total bigint;
BEGIN
    IF s.format NOT IN ('mixpanel', 'amplitude') THEN
        RAISE EXCEPTION 'data source "%" is not an event source (format %)', source, s.format
            USING ERRCODE = 'wrong_object_type', HINT = 'Use cs.ingest(source, payload) for records.';
    END IF;
    IF to_regclass('pg_temp.cs_ingest_events_parsed') IS NULL THEN
        CREATE TEMP TABLE cs_ingest_events_parsed (
        line int, customer_id uuid, user_id text, event text, feature text, quantity float8,
        occurred_at timestamptz, source_id text, error text, raw text) ON COMMIT DROP;
    END IF;
    TRUNCATE cs_ingest_events_parsed;
    INSERT INTO cs_ingest_events_parsed
    SELECT p.line,
           CASE WHEN p.error IS NULL THEN coalesce(ks.customer_id, ka.customer_id, c.id) END,
           p.user_id, p.event, p.feature, p.quantity, p.occurred_at,
           coalesce(p.source_id, 'md5:' || md5(p.raw)),
           coalesce(p.error,
                    CASE WHEN coalesce(ks.customer_id, ka.customer_id, c.id) IS NULL
                         THEN format('unknown customer: %s %s maps to no customer', s.options ->> 'customer_property', p.customer_key)
                         WHEN p.occurred_at < '2000-01-01' OR p.occurred_at > now() + interval '1 day'
                         THEN format('occurred_at %s is out of range', p.occurred_at) END),
           p.raw
      FROM cs.parse_events(s.format, lines, coalesce(s.options ->> 'customer_property', 'company_id'),
                           coalesce(s.options ->> 'feature_property', 'feature')) p
      LEFT JOIN cs.customer_keys ks ON ks.source = s.system AND ks.key_kind = 'customer' AND ks.key = p.customer_key
      LEFT JOIN cs.customer_keys ka ON ka.source = 'any' AND ka.key_kind = 'customer' AND ka.key = p.customer_key
      LEFT JOIN cs.customers c ON c.external_id = p.customer_key;

    -- Schema drift: the top-level keys of the chunk's records (src/sql/84_source_fields.sql).
    PERFORM cs._note_fields(source, ARRAY(SELECT DISTINCT k FROM cs_ingest_events_parsed x
                                           CROSS JOIN LATERAL unnest(cs._record_fields(cs._jsonb_or_string(x.raw))) k));

    -- Rejects: invalid JSON is kept as a JSON string.
    WITH bad AS (
        SELECT DISTINCT ON (md5(x.raw)) x.raw, x.error FROM cs_ingest_events_parsed x WHERE x.error IS NOT NULL
         ORDER BY md5(x.raw), x.line
    )
    INSERT INTO cs.ingest_rejects AS r (source, payload, reason)
    SELECT ingest_events.source, cs._jsonb_or_string(b.raw), b.error FROM bad b
    ON CONFLICT (source, payload_hash) DO UPDATE
       SET reason = excluded.reason, received_at = excluded.received_at, times_seen = r.times_seen + 1;
    SELECT count(*) INTO res.rejected FROM cs_ingest_events_parsed x WHERE x.error IS NOT NULL;

    -- The same event twice in one chunk is one event.  (RETURNING cannot read
    -- xmax of a partitioned table: count the events that exist already instead.)
    SELECT count(*) INTO n
      FROM (SELECT DISTINCT x.source_id, x.occurred_at FROM cs_ingest_events_parsed x WHERE x.error IS NULL) g
     WHERE EXISTS (SELECT 1 FROM cs.usage_events e
                    WHERE e.source = ingest_events.source AND e.source_id = g.source_id AND e.occurred_at = g.occurred_at);
    -- An event whose customer changed in the source (its key maps elsewhere
    -- now) moves: deleted under the old customer here, inserted under the new
    -- one below, so that no key changes its customer_id (Citus distributes by
    -- it); it counts once, as updated.
    DELETE FROM cs.usage_events e
     USING (SELECT DISTINCT ON (x.source_id, x.occurred_at) x.source_id, x.occurred_at, x.customer_id
              FROM cs_ingest_events_parsed x WHERE x.error IS NULL
             ORDER BY x.source_id, x.occurred_at, x.line DESC) g
     WHERE e.source = ingest_events.source AND e.source_id = g.source_id AND e.occurred_at = g.occurred_at
       AND e.customer_id <> g.customer_id;
    WITH good AS (
        SELECT DISTINCT ON (x.source_id, x.occurred_at) x.*
          FROM cs_ingest_events_parsed x WHERE x.error IS NULL
         ORDER BY x.source_id, x.occurred_at, x.line DESC
    ), up AS (
        INSERT INTO cs.usage_events AS e (customer_id, user_id, event, feature, quantity, occurred_at, source, source_id)
        SELECT g.customer_id, g.user_id, g.event, g.feature, g.quantity, g.occurred_at, ingest_events.source, g.source_id FROM good g
        ON CONFLICT (source, source_id, occurred_at, customer_id) WHERE source IS NOT NULL DO UPDATE
           SET user_id = excluded.user_id, event = excluded.event,
               feature = excluded.feature, quantity = excluded.quantity
         WHERE (e.user_id, e.event, e.feature, e.quantity)
               IS DISTINCT FROM (excluded.user_id, excluded.event, excluded.feature, excluded.quantity)
        RETURNING 1
    )
    SELECT count(*) INTO res.updated FROM up;
    -- Every valid line counts: repeated lines of the chunk are unchanged.
    SELECT count(*) INTO total FROM cs_ingest_events_parsed x WHERE x.error IS NULL;
    res.inserted := (SELECT count(*) FROM (SELECT DISTINCT x.source_id, x.occurred_at
                                             FROM cs_ingest_events_parsed x WHERE x.error IS NULL) g) - n;
    res.updated := res.updated - res.inserted;
    res.unchanged := total - res.inserted - res.updated;
    -- Events that load now are no longer rejects.
    IF EXISTS (SELECT 1 FROM cs.ingest_rejects r WHERE r.source = ingest_events.source) THEN
        DELETE FROM cs.ingest_rejects r
         USING cs_ingest_events_parsed x
         WHERE x.error IS NULL AND r.source = ingest_events.source AND r.payload_hash = md5(cs._jsonb_or_string(x.raw)::text);
    END IF;
    PERFORM cs._note_activity(source, total, res.rejected);
    TRUNCATE cs_ingest_events_parsed;
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs.ingest_events(text, text) IS
    'Loads a chunk of NDJSON events (Mixpanel or Amplitude export) into cs.usage_events: parsed in C, customers resolved by cs.customer_keys (kind customer) or external_id, upserted on (source, $insert_id or uuid or a hash of the line, time) and the customer (an event whose customer changed is moved: deleted, then inserted; counted as updated); lines that cannot be loaded go to cs.ingest_rejects. Returns the counts.';

------------------------------------------------------------------------------
-- The entry points
------------------------------------------------------------------------------

-- Loads one record of a source, or the records of a list form: a JSON array,
-- {"tickets": [...]} (Zendesk), {"object": "list", "data": [...]} (Stripe),
-- a webhook envelope {"ticket": ...} or {"type": ..., "data": {"object": ...}}.
CREATE OR REPLACE FUNCTION cs.ingest(source text, payload jsonb)
RETURNS cs.ingest_result
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    s      cs.data_sources := cs._source(source);
    res    cs.ingest_result := (0, 0, 0, 0)::cs.ingest_result;
    sub    cs.ingest_result;
    item   jsonb;
    status text;
    err    text;
    state  text;
BEGIN
    IF payload IS NULL THEN
        RAISE EXCEPTION 'payload must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF s.format IN ('mixpanel', 'amplitude') THEN
        IF jsonb_typeof(payload) = 'array' THEN
            RETURN cs.ingest_events(source, (SELECT string_agg(e::text, E'\n') FROM jsonb_array_elements(payload) e));
        END IF;
        RETURN cs.ingest_events(source, payload::text);
    END IF;
    IF s.format = 'csv' THEN
        PERFORM cs._check_csv_options(s);
    END IF;

    -- List forms and envelopes.
    IF jsonb_typeof(payload) = 'array' THEN
        FOR item IN SELECT e FROM jsonb_array_elements(payload) e LOOP
            sub := cs.ingest(source, item);
            res := (res.inserted + sub.inserted, res.updated + sub.updated, res.unchanged + sub.unchanged, res.rejected + sub.rejected)::cs.ingest_result;
        END LOOP;
        RETURN res;
    ELSIF s.format = 'zendesk_ticket' AND jsonb_typeof(payload -> 'tickets') = 'array' THEN
        RETURN cs.ingest(source, payload -> 'tickets');
    ELSIF s.format = 'zendesk_ticket' AND jsonb_typeof(payload -> 'ticket') = 'object' THEN
        payload := payload -> 'ticket';
    ELSIF s.format = 'stripe_invoice' AND payload ->> 'object' = 'list' AND jsonb_typeof(payload -> 'data') = 'array' THEN
        RETURN cs.ingest(source, payload -> 'data');
    ELSIF s.format = 'stripe_invoice' AND payload ->> 'object' = 'event' AND jsonb_typeof(payload -> 'data' -> 'object') = 'object' THEN
        payload := payload -> 'data' -> 'object';
    -- billing lists (src/sql/82_billing.sql); their loaders read events whole, for the time of the change
    ELSIF s.format IN ('stripe_subscription', 'stripe_customer') AND payload ->> 'object' = 'list' AND jsonb_typeof(payload -> 'data') = 'array' THEN
        RETURN cs.ingest(source, payload -> 'data');
    ELSIF s.format IN ('chargebee_customer', 'chargebee_subscription', 'chargebee_invoice') AND jsonb_typeof(payload -> 'list') = 'array' THEN
        RETURN cs.ingest(source, payload -> 'list');
    -- Salesforce query results, Intercom lists and webhooks (src/sql/81_crm.sql)
    ELSIF s.format ~ '^(salesforce|intercom)_' AND cs._crm_records(s, payload) IS DISTINCT FROM payload THEN
        RETURN cs.ingest(source, cs._crm_records(s, payload));
    END IF;

    -- Schema drift: the record's fields count for the batch (src/sql/84_source_fields.sql).
    PERFORM cs._note_fields(source, cs._record_fields(payload));
    BEGIN
        IF jsonb_typeof(payload) <> 'object' THEN
            PERFORM cs._unmappable('record is not a JSON object');
        END IF;
        status := CASE s.format
            WHEN 'stripe_invoice' THEN cs._ingest_stripe_invoice(s, payload)
            WHEN 'stripe_invoice_csv' THEN cs._ingest_stripe_invoice_csv(s, payload)
            WHEN 'zendesk_ticket' THEN cs._ingest_zendesk_ticket(s, payload)
            WHEN 'hubspot_company' THEN cs._ingest_hubspot_company(s, payload)
            WHEN 'hubspot_contact' THEN cs._ingest_hubspot_contact(s, payload)
            WHEN 'csv' THEN cs._ingest_csv(s, payload)
            -- billing (src/sql/82_billing.sql)
            WHEN 'stripe_subscription' THEN cs._ingest_stripe_subscription(s, payload)
            WHEN 'stripe_customer' THEN cs._ingest_stripe_customer(s, payload)
            WHEN 'chargebee_customer' THEN cs._ingest_chargebee_customer(s, payload)
            WHEN 'chargebee_subscription' THEN cs._ingest_chargebee_subscription(s, payload)
            WHEN 'chargebee_invoice' THEN cs._ingest_chargebee_invoice(s, payload)
            WHEN 'salesforce_account' THEN cs._ingest_crm(s, payload)
            WHEN 'salesforce_contact' THEN cs._ingest_crm(s, payload)
            WHEN 'salesforce_opportunity' THEN cs._ingest_crm(s, payload)
            WHEN 'salesforce_task' THEN cs._ingest_crm(s, payload)
            WHEN 'intercom_conversation' THEN cs._ingest_crm(s, payload)
            WHEN 'intercom_company' THEN cs._ingest_crm(s, payload)
        END;
    EXCEPTION
        WHEN query_canceled THEN
            RAISE;
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            -- Faults of the system or of its configuration are errors, not bad records.
            IF left(state, 2) IN ('42', 'XX', '53', '54', '55', '57', '58', '40', '25', '0A') THEN
                RAISE;
            END IF;
            PERFORM cs._reject(source, ingest.payload, err);
            PERFORM cs._note_activity(source, 0, 1);
            RETURN (0, 0, 0, 1)::cs.ingest_result;
    END;
    -- A record that loads now is no longer a reject.
    DELETE FROM cs.ingest_rejects r WHERE r.source = ingest.source AND r.payload_hash = md5(ingest.payload::text);
    PERFORM cs._note_activity(source, 1, 0);
    RETURN CASE status WHEN 'inserted' THEN (1, 0, 0, 0)::cs.ingest_result WHEN 'updated' THEN (0, 1, 0, 0)::cs.ingest_result
                       ELSE (0, 0, 1, 0)::cs.ingest_result END;
END;
$$;
COMMENT ON FUNCTION cs.ingest(text, jsonb) IS
    'Loads one record (webhook payload, API object, or a CSV row as {header: value}) of a data source, or every record of a list form (JSON array, Zendesk {"tickets": [...]}, Stripe list object, Salesforce query result, Intercom list) or envelope (Zendesk {"ticket": ...}, Stripe event, Intercom notification_event); records that cannot be loaded go to cs.ingest_rejects with the reason. Returns inserted, updated, unchanged and rejected counts.';

-- Loads a text body: NDJSON events, one JSON document, or one JSON record per line.
CREATE OR REPLACE FUNCTION cs.ingest_text(source text, body text)
RETURNS cs.ingest_result
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    s    cs.data_sources := cs._source(source);
    doc  jsonb;
    res  cs.ingest_result := (0, 0, 0, 0)::cs.ingest_result;
    sub  cs.ingest_result;
    ln   text;
BEGIN
    IF s.format IN ('mixpanel', 'amplitude') THEN
        RETURN cs.ingest_events(source, body);
    END IF;
    BEGIN
        doc := body::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        doc := NULL;
    END;
    IF doc IS NOT NULL THEN
        RETURN cs.ingest(source, doc);
    END IF;
    -- Not one document: one record per line.
    FOR ln IN SELECT l FROM regexp_split_to_table(body, E'\r?\n') l WHERE btrim(l) <> '' LOOP
        BEGIN
            doc := ln::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            PERFORM cs._reject(source, to_jsonb(ln), 'invalid JSON');
            PERFORM cs._note_activity(source, 0, 1);
            res.rejected := res.rejected + 1;
            CONTINUE;
        END;
        sub := cs.ingest(source, doc);
        res := (res.inserted + sub.inserted, res.updated + sub.updated, res.unchanged + sub.unchanged, res.rejected + sub.rejected)::cs.ingest_result;
    END LOOP;
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs.ingest_text(text, text) IS
    'Loads a text body of a source: NDJSON chunks for event sources; otherwise one JSON document (object, list, envelope) or, when the body is not one document, one JSON record per line (invalid lines are rejected). Returns the counts.';
