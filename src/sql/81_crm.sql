-- CRM and support integrations: Salesforce (Accounts, Contacts, Opportunities,
-- Tasks and Events, from the REST API's query results or Data Loader CSV
-- exports) and Intercom (conversations and companies, from the REST API and
-- webhooks).  The loaders follow the rules of src/sql/80_integrations.sql:
-- upsert on the source's id leaving identical rows alone, customers resolved
-- by key, external_id or domain, anything that cannot map raised through
-- cs._unmappable so cs.ingest keeps it in cs.ingest_rejects with the reason.

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- The 18-character form of a Salesforce id: the 15-character, case-sensitive
-- id followed by three characters encoding which of its letters are upper case.
CREATE OR REPLACE FUNCTION cs.salesforce_id(id text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    v      text := btrim(id);
    suffix text := '';
    flags  int;
    ch     text;
BEGIN
    IF v !~ '^[a-zA-Z0-9]{15}([a-zA-Z0-5]{3})?$' THEN
        RAISE EXCEPTION 'invalid Salesforce id "%"', id USING ERRCODE = 'invalid_parameter_value',
              DETAIL = 'A Salesforce id has 15 letters and digits, or 18 with its checksum suffix.';
    END IF;
    FOR chunk IN 0..2 LOOP
        flags := 0;
        FOR pos IN 0..4 LOOP
            ch := substr(v, chunk * 5 + pos + 1, 1);
            IF ch BETWEEN 'A' AND 'Z' THEN
                flags := flags | (1 << pos);
            END IF;
        END LOOP;
        suffix := suffix || substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ012345', flags + 1, 1);
    END LOOP;
    IF length(v) = 18 AND upper(right(v, 3)) <> suffix THEN
        RAISE EXCEPTION 'invalid Salesforce id "%": checksum % does not match %', id, right(v, 3), suffix
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The first 15 characters are case-sensitive: a changed case changes the id.';
    END IF;
    RETURN left(v, 15) || suffix;
END;
$$;
COMMENT ON FUNCTION cs.salesforce_id(text) IS
    'The canonical 18-character form of a Salesforce id: a 15-character id gets its checksum suffix, an 18-character one is checked; invalid ids are an error (SQLSTATE 22023).';

-- Every key of an object, and of the objects in it, in lower case: Data Loader
-- writes headers in upper case, the API in camel case.
CREATE OR REPLACE FUNCTION cs._lower_keys(p jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        RETURN p;
    END IF;
    RETURN coalesce((SELECT jsonb_object_agg(lower(e.key), cs._lower_keys(e.value)) FROM jsonb_each(p) e), '{}');
END;
$$;
COMMENT ON FUNCTION cs._lower_keys(jsonb) IS 'Internal: a JSON object with every key (of nested objects too) in lower case.';

-- A field of a Salesforce record whose keys are in lower case: "account.name"
-- is the CSV header of a relationship field or the path account -> name of the JSON.
CREATE OR REPLACE FUNCTION cs._sf(p jsonb, field text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT nullif(btrim(coalesce(p ->> field, p #>> string_to_array(field, '.'))), '');
$$;
COMMENT ON FUNCTION cs._sf(jsonb, text) IS 'Internal: a field of a lower-cased Salesforce record (a.b: CSV header or relationship path), NULL when empty.';

-- A Salesforce checkbox: true/false (also 1/0, yes/no); NULL when empty.
CREATE OR REPLACE FUNCTION cs._sf_bool(what text, v text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    v := lower(btrim(v));
    IF v IS NULL OR v = '' THEN
        RETURN NULL;
    ELSIF v IN ('true', '1', 'yes', 't') THEN
        RETURN true;
    ELSIF v IN ('false', '0', 'no', 'f') THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION '% "%" is not true or false', what, v USING ERRCODE = 'invalid_text_representation';
END;
$$;
COMMENT ON FUNCTION cs._sf_bool(text, text) IS 'Internal: a checkbox field (true/false, 1/0, yes/no) as boolean, NULL when empty, an error otherwise.';

-- Plain text of an HTML fragment (Intercom message bodies).
CREATE OR REPLACE FUNCTION cs._strip_html(html text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT nullif(btrim(regexp_replace(
        replace(replace(replace(replace(replace(replace(replace(
            regexp_replace(
                regexp_replace(html, '<\s*(br|/p|/div|/li|/h[1-6])\s*/?\s*>', E'\n', 'gi'),
                '<[^>]*>', '', 'g'),
            '&nbsp;', ' '), '&lt;', '<'), '&gt;', '>'), '&quot;', '"'), '&#39;', ''''), '&apos;', ''''), '&amp;', '&'),
        '[ \t]*\n[ \t\n]*', E'\n', 'g'), E' \t\n'), '');
$$;
COMMENT ON FUNCTION cs._strip_html(text) IS 'Internal: the text of an HTML fragment: tags removed (line breaks for br, p, div, li, headings), common entities decoded; NULL when empty.';

-- The records of a CRM payload: the list of a list form, the record of an
-- envelope, else the payload itself.
CREATE OR REPLACE FUNCTION cs._crm_records(s cs.data_sources, p jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        RETURN p;
    ELSIF s.format LIKE 'salesforce\_%' THEN
        -- REST query {"totalSize", "done", "records": [...]}; sf data query --json {"result": {"records": [...]}}
        IF jsonb_typeof(p -> 'records') = 'array' THEN
            RETURN p -> 'records';
        ELSIF jsonb_typeof(p -> 'result' -> 'records') = 'array' THEN
            RETURN p -> 'result' -> 'records';
        END IF;
    ELSIF s.format LIKE 'intercom\_%' THEN
        IF p ->> 'type' = 'notification_event' AND jsonb_typeof(p -> 'data' -> 'item') = 'object' THEN
            RETURN p -> 'data' -> 'item';
        ELSIF jsonb_typeof(p -> 'conversations') = 'array' THEN
            RETURN p -> 'conversations';
        ELSIF jsonb_typeof(p -> 'companies') = 'array' THEN
            RETURN p -> 'companies';
        ELSIF p ->> 'type' IN ('list', 'company.list', 'conversation.list') AND jsonb_typeof(p -> 'data') = 'array' THEN
            RETURN p -> 'data';
        END IF;
    END IF;
    RETURN p;
END;
$$;
COMMENT ON FUNCTION cs._crm_records(cs.data_sources, jsonb) IS
    'Internal: the records of a Salesforce or Intercom payload: the records array of a query result (also inside sf data query --json), the list of an Intercom list (conversations, data, companies), the item of a webhook notification_event; otherwise the payload.';

-- The customer of a Salesforce account id: its account key, else the
-- customer whose external_id is the id (18 or 15 characters).
CREATE OR REPLACE FUNCTION cs._sf_customer(sys text, account text)
RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
    SELECT coalesce(cs.resolve_customer(sys, 'account', account),
                    cs.resolve_customer(sys, 'external_id', account),
                    cs.resolve_customer(sys, 'external_id', left(account, 15)));
$$;
COMMENT ON FUNCTION cs._sf_customer(text, text) IS
    'Internal: customer of an 18-character Salesforce account id: the account key in cs.customer_keys, else cs.customers.external_id equal to the 18- or 15-character id.';

-- The oldest customer with a domain and no key of the given kind in the
-- system yet: another account of the same system sharing a domain (a
-- subsidiary) is a customer of its own, not this one.
CREATE OR REPLACE FUNCTION cs._unkeyed_by_domain(sys text, key_kind text, dom text)
RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, cs
AS $$
    SELECT c.id FROM cs.customers c
     WHERE c.domain = dom
       AND NOT EXISTS (SELECT 1 FROM cs.customer_keys k
                        WHERE k.customer_id = c.id AND k.source = sys AND k.key_kind = _unkeyed_by_domain.key_kind)
     ORDER BY c.created_at, c.id LIMIT 1;
$$;
COMMENT ON FUNCTION cs._unkeyed_by_domain(text, text, text) IS
    'Internal: the oldest customer of a domain that has no key of that kind in that system yet; NULL when none.';

-- An upsert's outcome from RETURNING (xmax = 0): NULL when the row was identical.
CREATE OR REPLACE FUNCTION cs._upsert_outcome(ins boolean)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN ins IS NULL THEN 'unchanged' WHEN ins THEN 'inserted' ELSE 'updated' END;
$$;
COMMENT ON FUNCTION cs._upsert_outcome(boolean) IS 'Internal: inserted, updated or unchanged from the (xmax = 0) an upsert returned (NULL: nothing written).';

------------------------------------------------------------------------------
-- Salesforce
------------------------------------------------------------------------------

-- One Account: creates or updates the customer and its place in an account family.
CREATE OR REPLACE FUNCTION cs._ingest_salesforce_account(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    sid     text := cs.salesforce_id(cs._sf(p, 'id'));
    nm      text := cs._sf(p, 'name');
    dom     text := cs.domain_of(cs._sf(p, 'website'));
    ind     text := cs._sf(p, 'industry');
    v_emp   numeric := cs._number('NumberOfEmployees', cs._sf(p, 'numberofemployees'));
    v_mrr   numeric := CASE WHEN s.options ? 'mrr_field'
                            THEN cs._number(s.options ->> 'mrr_field', cs._sf(p, lower(s.options ->> 'mrr_field'))) END;
    ext     text := CASE WHEN s.options ? 'external_id_field' THEN cs._sf(p, lower(s.options ->> 'external_id_field')) END;
    has_parent boolean := p ? 'parentid';
    parent  text := cs.salesforce_id(cs._sf(p, 'parentid'));
    pid     uuid;
    c       uuid;
    res     text;
BEGIN
    IF sid IS NULL THEN
        PERFORM cs._unmappable('no Id (not a Salesforce Account record)');
    END IF;
    IF cs._sf_bool('IsDeleted', cs._sf(p, 'isdeleted')) THEN
        PERFORM cs._unmappable(format('account %s is deleted in Salesforce; cs.purge_customer removes its customer', sid));
    END IF;
    IF nm IS NULL THEN
        PERFORM cs._unmappable(format('account %s has no Name', sid));
    END IF;
    IF v_emp < 0 OR v_emp >= 1e8 THEN
        PERFORM cs._unmappable(format('account %s: NumberOfEmployees %s is out of range', sid, v_emp));
    END IF;
    IF v_mrr < 0 OR v_mrr >= 1e8 THEN
        PERFORM cs._unmappable(format('account %s: %s %s is out of range', sid, s.options ->> 'mrr_field', v_mrr));
    END IF;
    IF parent = sid THEN
        PERFORM cs._unmappable(format('account %s is its own ParentId', sid));
    END IF;
    c := cs._sf_customer(s.system, sid);
    IF c IS NULL AND ext IS NOT NULL THEN
        c := cs.resolve_customer(s.system, 'external_id', ext);
    END IF;
    IF c IS NULL AND dom IS NOT NULL THEN
        c := cs._unkeyed_by_domain(s.system, 'account', dom);
    END IF;
    pid := cs._sf_customer(s.system, parent);
    IF c IS NULL THEN
        INSERT INTO cs.customers (external_id, name, industry, size, mrr, domain, parent_id)
        VALUES (coalesce(ext, sid), nm, ind, cs._size_band(v_emp), v_mrr, dom, pid)
        RETURNING id INTO c;
        res := 'inserted';
    ELSE
        UPDATE cs.customers u
           SET name = nm, industry = coalesce(ind, u.industry), size = coalesce(cs._size_band(v_emp), u.size),
               mrr = coalesce(v_mrr, u.mrr), domain = coalesce(dom, u.domain),
               parent_id = CASE WHEN has_parent THEN pid ELSE u.parent_id END
         WHERE u.id = c
           AND (u.name, u.industry, u.size, u.mrr, u.domain, u.parent_id)
               IS DISTINCT FROM (nm, coalesce(ind, u.industry), coalesce(cs._size_band(v_emp), u.size),
                                 coalesce(v_mrr, u.mrr), coalesce(dom, u.domain),
                                 CASE WHEN has_parent THEN pid ELSE u.parent_id END);
        res := CASE WHEN FOUND THEN 'updated' ELSE 'unchanged' END;
    END IF;
    PERFORM cs._learn_key(s.system, 'account', sid, c);
    -- A parent not loaded yet is set when it loads.
    IF has_parent AND parent IS NOT NULL AND pid IS NULL THEN
        INSERT INTO cs.pending_parents AS q (customer_id, source, key_kind, parent_key)
        VALUES (c, s.system, 'account', parent)
        ON CONFLICT (customer_id) DO UPDATE SET source = excluded.source, key_kind = excluded.key_kind,
                                                parent_key = excluded.parent_key, noted_at = excluded.noted_at
         WHERE (q.source, q.key_kind, q.parent_key) IS DISTINCT FROM (excluded.source, excluded.key_kind, excluded.parent_key);
    ELSIF has_parent THEN
        DELETE FROM cs.pending_parents q WHERE q.customer_id = c;
    END IF;
    -- Subsidiaries that waited for this account (a cycle fails the record: 23514).
    WITH adopted AS (
        DELETE FROM cs.pending_parents q
         WHERE q.source = s.system AND q.key_kind = 'account' AND q.parent_key = sid
        RETURNING q.customer_id
    )
    UPDATE cs.customers ch SET parent_id = c
      FROM adopted a WHERE ch.id = a.customer_id AND ch.parent_id IS DISTINCT FROM c;
    IF FOUND AND res = 'unchanged' THEN
        res := 'updated';
    END IF;
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs._ingest_salesforce_account(cs.data_sources, jsonb) IS
    'Internal: loads one Salesforce Account: the customer of its account key, external_id (the Id, or options.external_id_field) or Website domain, else a new one (external_id = the 18-character Id); Name, Industry, NumberOfEmployees as size band, options.mrr_field as MRR; ParentId as parent_id, kept in cs.pending_parents until the parent loads.';

-- One Contact.
CREATE OR REPLACE FUNCTION cs._ingest_salesforce_contact(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    sid     text := cs.salesforce_id(cs._sf(p, 'id'));
    acct    text := cs.salesforce_id(cs._sf(p, 'accountid'));
    v_email text := lower(cs._sf(p, 'email'));
    nm      text := coalesce(cs._sf(p, 'name'), nullif(concat_ws(' ', cs._sf(p, 'firstname'), cs._sf(p, 'lastname')), ''));
    c       uuid;
    ins     boolean;
    moved   boolean;
BEGIN
    IF sid IS NULL THEN
        PERFORM cs._unmappable('no Id (not a Salesforce Contact record)');
    END IF;
    IF cs._sf_bool('IsDeleted', cs._sf(p, 'isdeleted')) THEN
        DELETE FROM cs.contacts t WHERE t.source = s.name AND t.source_id = sid;
        RETURN CASE WHEN FOUND THEN 'updated' ELSE 'unchanged' END;
    END IF;
    IF v_email IS NOT NULL AND v_email !~ '^[^@[:space:]]+@[^@[:space:]]+$' THEN
        PERFORM cs._unmappable(format('contact %s: invalid Email "%s"', sid, v_email));
    END IF;
    c := cs._sf_customer(s.system, acct);
    IF c IS NULL AND v_email IS NOT NULL THEN
        c := cs.resolve_customer(s.system, 'domain', cs.domain_of(v_email));
    END IF;
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: contact %s (account %s, email %s) maps to no customer',
                                      sid, coalesce(acct, '(none)'), coalesce(v_email, '(none)')));
    END IF;
    -- A contact of another account in the source moves: deleted under the old customer, inserted here.
    DELETE FROM cs.contacts t WHERE t.source = s.name AND t.source_id = sid AND t.customer_id <> c;
    moved := FOUND;
    INSERT INTO cs.contacts AS t (customer_id, name, email, role, source, source_id)
    VALUES (c, coalesce(nm, v_email, 'contact ' || sid), v_email, cs._sf(p, 'title'), s.name, sid)
    ON CONFLICT (source, source_id, customer_id) WHERE source IS NOT NULL DO UPDATE
       SET name = excluded.name, email = excluded.email, role = excluded.role
     WHERE (t.name, t.email, t.role) IS DISTINCT FROM (excluded.name, excluded.email, excluded.role)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN moved THEN 'updated' ELSE cs._upsert_outcome(ins) END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_salesforce_contact(cs.data_sources, jsonb) IS
    'Internal: loads one Salesforce Contact into cs.contacts (source_id = 18-character Id): customer by AccountId, else email domain; Name (or FirstName LastName), Email, Title as role; IsDeleted removes it.';

-- Opportunity status of a Salesforce stage: options.stage_map, the standard
-- stages, else IsClosed/IsWon; an unknown stage without them is an error.
CREATE OR REPLACE FUNCTION cs._sf_stage_status(s cs.data_sources, stage text, closed boolean, won boolean)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    st text := coalesce(s.options -> 'stage_map' ->> stage,
                        CASE stage WHEN 'Prospecting' THEN 'open' WHEN 'Qualification' THEN 'open' WHEN 'Needs Analysis' THEN 'open'
                                   WHEN 'Value Proposition' THEN 'in_progress' WHEN 'Id. Decision Makers' THEN 'in_progress'
                                   WHEN 'Perception Analysis' THEN 'in_progress' WHEN 'Proposal/Price Quote' THEN 'in_progress'
                                   WHEN 'Negotiation/Review' THEN 'in_progress'
                                   WHEN 'Closed Won' THEN 'won' WHEN 'Closed Lost' THEN 'lost' END,
                        CASE WHEN closed AND won THEN 'won' WHEN closed THEN 'lost' WHEN NOT closed THEN 'in_progress' END);
BEGIN
    IF stage IS NULL THEN
        RAISE EXCEPTION 'no StageName' USING ERRCODE = 'invalid_parameter_value';
    ELSIF st IS NULL THEN
        RAISE EXCEPTION 'unknown Salesforce stage "%"', stage USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Map it in options.stage_map, or export IsClosed and IsWon.';
    ELSIF st NOT IN ('open', 'in_progress', 'won', 'lost', 'dismissed') THEN
        RAISE EXCEPTION 'options.stage_map maps stage "%" to "%", not an opportunity status', stage, st
              USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN st;
END;
$$;
COMMENT ON FUNCTION cs._sf_stage_status(cs.data_sources, text, boolean, boolean) IS
    'Internal: opportunity status of a Salesforce StageName: options.stage_map, else the standard stages (Prospecting, Qualification, Needs Analysis: open; Value Proposition to Negotiation/Review: in_progress; Closed Won: won; Closed Lost: lost), else IsClosed/IsWon.';

-- One Opportunity.
CREATE OR REPLACE FUNCTION cs._ingest_salesforce_opportunity(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    sid     text := cs.salesforce_id(cs._sf(p, 'id'));
    acct    text := cs.salesforce_id(cs._sf(p, 'accountid'));
    stage   text := cs._sf(p, 'stagename');
    typ     text := cs._sf(p, 'type');
    amount  numeric := cs._number('Amount', cs._sf(p, 'amount'));
    prob    numeric := cs._number('Probability', cs._sf(p, 'probability'));
    closing date := cs._parse_time(cs._sf(p, 'closedate'))::date;
    created timestamptz := cs._parse_time(cs._sf(p, 'createddate'));
    months  numeric := coalesce(cs._number('options.amount_months', s.options ->> 'amount_months'), 12);
    st      text;
    v_kind  text;
    v_mrr   numeric;
    c       uuid;
    ins     boolean;
    moved   boolean;
    was_created timestamptz;
BEGIN
    IF sid IS NULL THEN
        PERFORM cs._unmappable('no Id (not a Salesforce Opportunity record)');
    END IF;
    IF cs._sf_bool('IsDeleted', cs._sf(p, 'isdeleted')) THEN
        DELETE FROM cs.opportunities o WHERE o.data_source = s.name AND o.source_id = sid;
        RETURN CASE WHEN FOUND THEN 'updated' ELSE 'unchanged' END;
    END IF;
    IF months <= 0 THEN
        RAISE EXCEPTION 'data source "%": options.amount_months must be positive', s.name USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    st := cs._sf_stage_status(s, stage, cs._sf_bool('IsClosed', cs._sf(p, 'isclosed')), cs._sf_bool('IsWon', cs._sf(p, 'iswon')));
    v_kind := coalesce(s.options -> 'type_map' ->> typ,
                       CASE typ WHEN 'Existing Customer - Upgrade' THEN 'upsell'
                                WHEN 'Existing Customer - Downgrade' THEN NULL
                                ELSE 'expansion' END);
    IF v_kind IS NULL THEN
        PERFORM cs._unmappable(format('opportunity %s: Type "%s" is a downgrade, not an opportunity (map it in options.type_map to load it)', sid, typ));
    ELSIF v_kind NOT IN ('upsell', 'cross_sell', 'expansion', 'adoption') THEN
        RAISE EXCEPTION 'options.type_map maps Type "%" to "%", not an opportunity kind', typ, v_kind USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF amount < 0 THEN
        PERFORM cs._unmappable(format('opportunity %s: Amount %s is out of range (negative)', sid, amount));
    END IF;
    v_mrr := round(amount / months, 2);
    IF v_mrr >= 1e8 THEN
        PERFORM cs._unmappable(format('opportunity %s: Amount %s is out of range', sid, amount));
    END IF;
    -- Salesforce's default probability of each standard stage when none is given.
    prob := coalesce(prob, CASE stage WHEN 'Prospecting' THEN 10 WHEN 'Qualification' THEN 10 WHEN 'Needs Analysis' THEN 20
                                      WHEN 'Value Proposition' THEN 50 WHEN 'Id. Decision Makers' THEN 60
                                      WHEN 'Perception Analysis' THEN 70 WHEN 'Proposal/Price Quote' THEN 75
                                      WHEN 'Negotiation/Review' THEN 90 END,
                           CASE st WHEN 'won' THEN 100 WHEN 'lost' THEN 0 END);
    IF prob < 0 OR prob > 100 THEN
        PERFORM cs._unmappable(format('opportunity %s: Probability %s is out of range (0-100)', sid, prob));
    END IF;
    IF st IN ('won', 'lost') AND closing IS NULL THEN
        PERFORM cs._unmappable(format('opportunity %s: closed without a CloseDate', sid));
    END IF;
    PERFORM cs._check_time('CreatedDate', created);
    IF st IN ('won', 'lost') THEN
        PERFORM cs._check_time('CloseDate', closing);
    END IF;
    c := cs._sf_customer(s.system, acct);
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: opportunity %s (account %s) maps to no customer', sid, coalesce(acct, '(none)')));
    END IF;
    -- An opportunity of another account in the source moves: deleted under
    -- the old customer (its creation time kept), inserted here.
    DELETE FROM cs.opportunities o WHERE o.data_source = s.name AND o.source_id = sid AND o.customer_id <> c
    RETURNING o.created_at INTO was_created;
    moved := FOUND;
    INSERT INTO cs.opportunities AS o (customer_id, kind, score, expected_mrr, reasons, status, created_at, source,
                                       won_mrr, closed_at, data_source, source_id)
    VALUES (c, v_kind, round(coalesce(prob, 0) / 100, 3), round(v_mrr * coalesce(prob, 0) / 100, 2),
            jsonb_strip_nulls(jsonb_build_object('name', cs._sf(p, 'name'), 'stage', stage, 'type', typ, 'amount', amount,
                                                 'probability', prob, 'close_date', closing)),
            st, coalesce(created, was_created, now()), 'crm',
            CASE WHEN st = 'won' THEN v_mrr END,
            CASE WHEN st IN ('won', 'lost') THEN closing::timestamp AT TIME ZONE 'UTC' END,
            s.name, sid)
    ON CONFLICT (data_source, source_id, customer_id) WHERE data_source IS NOT NULL DO UPDATE
       SET kind = excluded.kind, score = excluded.score,
           expected_mrr = excluded.expected_mrr, reasons = excluded.reasons, status = excluded.status,
           created_at = coalesce(created, o.created_at), won_mrr = excluded.won_mrr, closed_at = excluded.closed_at
     WHERE (o.kind, o.score, o.expected_mrr, o.reasons, o.status, o.created_at, o.won_mrr, o.closed_at)
           IS DISTINCT FROM (excluded.kind, excluded.score, excluded.expected_mrr, excluded.reasons,
                             excluded.status, coalesce(created, o.created_at), excluded.won_mrr, excluded.closed_at)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN moved THEN 'updated' ELSE cs._upsert_outcome(ins) END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_salesforce_opportunity(cs.data_sources, jsonb) IS
    'Internal: loads one Salesforce Opportunity into cs.opportunities (source crm, upserted on data_source and the 18-character Id): StageName as status, Probability/100 as score, Amount / options.amount_months (12) as MRR, expected_mrr = MRR x score, won_mrr and closed_at (CloseDate) when closed; Type as kind (Existing Customer - Upgrade: upsell, others expansion, options.type_map).';

-- Engagement kind of a Task or Event: options.type_map, words of the subject
-- that name a particular touch, the Type, other words, then meeting for an
-- event and other for a task.
CREATE OR REPLACE FUNCTION cs._sf_activity_kind(s cs.data_sources, is_event boolean, typ text, subtype text, subject text)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    k text := s.options -> 'type_map' ->> typ;
    t text := lower(coalesce(typ, subtype, ''));
BEGIN
    IF k IS NOT NULL THEN
        IF k NOT IN ('meeting', 'call', 'email', 'qbr', 'training', 'onsite', 'note', 'other') THEN
            RAISE EXCEPTION 'options.type_map maps Type "%" to "%", not an engagement kind', typ, k USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RETURN k;
    END IF;
    RETURN CASE
        WHEN subject ~* '\m(qbr|ebr|business review)\M' THEN 'qbr'
        WHEN subject ~* '\m(training|onboarding|workshop)\M' THEN 'training'
        WHEN subject ~* '\m(on-?site|site visit)\M' THEN 'onsite'
        WHEN t = 'call' THEN 'call'
        WHEN t IN ('email', 'listemail') THEN 'email'
        WHEN t = 'meeting' THEN 'meeting'
        WHEN subject ~* '^\s*(email|e-mail|re|fw|fwd)\s*:' THEN 'email'
        WHEN subject ~* '^\s*(call|phone|left voicemail)\M' THEN 'call'
        WHEN subject ~* '\m(meeting|demo|sync|kick-?off|check-?in)\M' THEN 'meeting'
        WHEN is_event THEN 'meeting'
        ELSE 'other' END;
END;
$$;
COMMENT ON FUNCTION cs._sf_activity_kind(cs.data_sources, boolean, text, text, text) IS
    'Internal: engagement kind of a Salesforce Task or Event: options.type_map by Type, else qbr/training/onsite by subject words, else Type (or TaskSubtype) Call, Email, Meeting, else the subject (Email:, Call, meeting, demo, ...), else meeting for events and other for tasks.';

-- One Task or Event: a completed task or a past event is an engagement.
CREATE OR REPLACE FUNCTION cs._ingest_salesforce_task(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    sid      text := cs.salesforce_id(cs._sf(p, 'id'));
    objtype  text := lower(cs._sf(p, 'attributes.type'));
    is_event boolean;
    acct     text := cs._sf(p, 'accountid');
    subject  text := cs._sf(p, 'subject');
    done     boolean;
    at       timestamptz;
    c        uuid;
    ins      boolean;
    moved    boolean;
BEGIN
    IF sid IS NULL THEN
        PERFORM cs._unmappable('no Id (not a Salesforce Task or Event record)');
    END IF;
    -- The API names the object; in a CSV an Event has StartDateTime and no Status.
    is_event := coalesce(objtype = 'event', (p ? 'startdatetime' OR p ? 'activitydatetime') AND NOT p ? 'status');
    IF objtype IS NOT NULL AND objtype NOT IN ('task', 'event') THEN
        PERFORM cs._unmappable(format('record %s is a Salesforce %s, not a Task or Event', sid, p #>> '{attributes,type}'));
    END IF;
    -- An activity on an account has it as AccountId, else as WhatId (prefix 001).
    IF acct IS NULL AND cs._sf(p, 'whatid') LIKE '001%' THEN
        acct := cs._sf(p, 'whatid');
    END IF;
    acct := cs.salesforce_id(acct);
    IF is_event THEN
        at := coalesce(cs._parse_time(cs._sf(p, 'startdatetime')), cs._parse_time(cs._sf(p, 'activitydatetime')),
                       cs._parse_time(cs._sf(p, 'activitydate')));
        done := at <= now();
    ELSE
        done := coalesce(cs._sf_bool('IsClosed', cs._sf(p, 'isclosed')), lower(cs._sf(p, 'status')) = 'completed');
        at := coalesce(cs._parse_time(cs._sf(p, 'completeddatetime')), cs._parse_time(cs._sf(p, 'activitydate')),
                       cs._parse_time(cs._sf(p, 'createddate')));
    END IF;
    -- Deleted, open tasks and future events are no engagement (any more).
    IF cs._sf_bool('IsDeleted', cs._sf(p, 'isdeleted')) OR NOT coalesce(done, false) THEN
        DELETE FROM cs.engagements e WHERE e.source = s.name AND e.source_id = sid;
        RETURN CASE WHEN FOUND THEN 'updated' ELSE 'unchanged' END;
    END IF;
    IF at IS NULL THEN
        PERFORM cs._unmappable(format('activity %s has no date (CompletedDateTime, ActivityDate, StartDateTime)', sid));
    END IF;
    PERFORM cs._check_time('activity date', at);
    c := cs._sf_customer(s.system, acct);
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: activity %s (account %s) maps to no customer', sid, coalesce(acct, '(none)')));
    END IF;
    -- An activity of another account in the source moves: deleted under the old customer, inserted here.
    DELETE FROM cs.engagements e WHERE e.source = s.name AND e.source_id = sid AND e.customer_id <> c;
    moved := FOUND;
    INSERT INTO cs.engagements AS e (customer_id, kind, occurred_at, notes, source, source_id)
    VALUES (c, cs._sf_activity_kind(s, is_event, cs._sf(p, 'type'), cs._sf(p, 'tasksubtype'), subject), at,
            nullif(concat_ws(E'\n', subject, cs._sf(p, 'description')), ''), s.name, sid)
    ON CONFLICT (source, source_id, customer_id) WHERE source IS NOT NULL DO UPDATE
       SET kind = excluded.kind, occurred_at = excluded.occurred_at, notes = excluded.notes
     WHERE (e.kind, e.occurred_at, e.notes) IS DISTINCT FROM (excluded.kind, excluded.occurred_at, excluded.notes)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN moved THEN 'updated' ELSE cs._upsert_outcome(ins) END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_salesforce_task(cs.data_sources, jsonb) IS
    'Internal: loads one Salesforce Task or Event into cs.engagements (source_id = 18-character Id): a completed task at CompletedDateTime (else ActivityDate), a past event at StartDateTime; customer by AccountId (or an account WhatId); kind by cs._sf_activity_kind. Open tasks, future events and deleted records remove the engagement.';

------------------------------------------------------------------------------
-- Intercom
------------------------------------------------------------------------------

-- One conversation, as a support ticket.
CREATE OR REPLACE FUNCTION cs._ingest_intercom_conversation(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    cid      text := nullif(p ->> 'id', '');
    company  text := coalesce(p -> 'company' ->> 'id', p ->> 'company_id');
    contacts text[] := ARRAY(SELECT x ->> 'id' FROM jsonb_array_elements(
                                 CASE jsonb_typeof(p -> 'contacts' -> 'contacts') WHEN 'array' THEN p -> 'contacts' -> 'contacts' ELSE '[]' END) x
                              WHERE x ->> 'id' IS NOT NULL);
    author   text := lower(CASE WHEN p #>> '{source,author,type}' IN ('user', 'lead', 'contact') THEN p #>> '{source,author,email}' END);
    st       text;
    pr       text;
    opened   timestamptz;
    closed   timestamptz;
    rating   numeric;
    c        uuid;
    k        text;
    ins      boolean;
    moved    boolean;
BEGIN
    IF p ->> 'type' IS DISTINCT FROM 'conversation' OR cid IS NULL THEN
        PERFORM cs._unmappable(format('not an Intercom conversation (type must be "conversation" with an id, not %s)',
                                      coalesce(p ->> 'type', '(none)')));
    END IF;
    c := cs.resolve_customer(s.system, 'company', company);
    FOREACH k IN ARRAY contacts LOOP
        EXIT WHEN c IS NOT NULL;
        c := cs.resolve_customer(s.system, 'contact', k);
    END LOOP;
    IF c IS NULL AND author IS NOT NULL THEN
        c := cs.resolve_customer(s.system, 'domain', cs.domain_of(author));
    END IF;
    IF c IS NULL THEN
        PERFORM cs._unmappable(format('unknown customer: Intercom conversation %s (company %s, contacts %s, author email %s) maps to no customer',
                                      cid, coalesce(company, '(none)'), coalesce(nullif(array_to_string(contacts, ' '), ''), '(none)'),
                                      coalesce(author, '(none)')));
    END IF;
    st := CASE lower(p ->> 'state') WHEN 'open' THEN 'open' WHEN 'snoozed' THEN 'on_hold' WHEN 'closed' THEN 'closed' END;
    IF st IS NULL THEN
        PERFORM cs._unmappable(format('conversation %s: unknown Intercom state "%s"', cid, coalesce(p ->> 'state', '(none)')));
    END IF;
    pr := CASE coalesce(p ->> 'priority', 'not_priority') WHEN 'priority' THEN 'high' WHEN 'not_priority' THEN 'normal' END;
    IF pr IS NULL THEN
        PERFORM cs._unmappable(format('conversation %s: unknown Intercom priority "%s"', cid, p ->> 'priority'));
    END IF;
    IF p ->> 'created_at' IS NULL THEN
        PERFORM cs._unmappable(format('conversation %s has no created_at', cid));
    END IF;
    opened := cs._check_time('created_at', cs._parse_time(p ->> 'created_at'));
    IF st = 'closed' THEN
        closed := coalesce(cs._parse_time(p #>> '{statistics,last_close_at}'), cs._parse_time(p ->> 'updated_at'));
    END IF;
    rating := cs._number('conversation_rating.rating', p #>> '{conversation_rating,rating}');
    IF rating IS NOT NULL AND (rating NOT BETWEEN 1 AND 5 OR rating <> trunc(rating)) THEN
        PERFORM cs._unmappable(format('conversation %s: rating %s is out of range (1-5)', cid, rating));
    END IF;
    -- The contact that resolved by domain or company is this customer's from now on.
    FOREACH k IN ARRAY contacts LOOP
        PERFORM cs._learn_key(s.system, 'contact', k, c);
    END LOOP;
    -- A conversation of another customer in the source moves: deleted there, inserted here.
    DELETE FROM cs.support_tickets t WHERE t.external_id = 'intercom:' || cid AND t.customer_id <> c;
    moved := FOUND;
    INSERT INTO cs.support_tickets AS t (customer_id, external_id, opened_at, closed_at, priority, status, csat, subject, body, source)
    VALUES (c, 'intercom:' || cid, opened, closed, pr, st, rating::smallint,
            cs._strip_html(coalesce(nullif(p #>> '{source,subject}', ''), p ->> 'title')), cs._strip_html(p #>> '{source,body}'), s.name)
    ON CONFLICT ON CONSTRAINT support_tickets_external_id_key DO UPDATE
       SET opened_at = excluded.opened_at, closed_at = excluded.closed_at,
           priority = excluded.priority, status = excluded.status, csat = excluded.csat, subject = excluded.subject,
           body = excluded.body, source = excluded.source
     WHERE (t.opened_at, t.closed_at, t.priority, t.status, t.csat, t.subject, t.body)
           IS DISTINCT FROM (excluded.opened_at, excluded.closed_at, excluded.priority,
                             excluded.status, excluded.csat, excluded.subject, excluded.body)
    RETURNING (xmax = 0) INTO ins;
    RETURN CASE WHEN moved THEN 'updated' ELSE cs._upsert_outcome(ins) END;
END;
$$;
COMMENT ON FUNCTION cs._ingest_intercom_conversation(cs.data_sources, jsonb) IS
    'Internal: loads one Intercom conversation into cs.support_tickets as external_id intercom:<id>: customer by company key, contact keys, then the author''s email domain (contacts are learnt); state open/snoozed/closed as open/on_hold/closed, priority as high/normal, conversation_rating.rating as CSAT, the first message (source.body, HTML stripped) as body.';

-- The customer columns an Intercom company's options.mapping may fill.
CREATE OR REPLACE FUNCTION cs._intercom_company_columns()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ARRAY['industry', 'segment', 'csm', 'seats_licensed', 'contract_start_date', 'contract_end_date'];
$$;
COMMENT ON FUNCTION cs._intercom_company_columns() IS 'Internal: the cs.customers columns an intercom_company source''s options.mapping may fill from company attributes.';

-- One company: creates or updates the customer.
CREATE OR REPLACE FUNCTION cs._ingest_intercom_company(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    iid    text := nullif(p ->> 'id', '');
    ext    text := nullif(btrim(p ->> 'company_id'), '');
    nm     text := nullif(btrim(p ->> 'name'), '');
    dom    text := cs.domain_of(p ->> 'website');
    v_mrr  numeric := cs._number('monthly_spend', p ->> 'monthly_spend');
    v_emp  numeric := cs._number('size', p ->> 'size');
    m      jsonb := coalesce(s.options -> 'mapping', '{}');
    v      jsonb := '{}';
    bad    text;
    c      uuid;
    cur    cs.customers;
    nxt    cs.customers;
    res    text;
BEGIN
    IF p ->> 'type' IS DISTINCT FROM 'company' OR iid IS NULL THEN
        PERFORM cs._unmappable(format('not an Intercom company (type must be "company" with an id, not %s)', coalesce(p ->> 'type', '(none)')));
    END IF;
    IF jsonb_typeof(m) <> 'object' OR EXISTS (SELECT 1 FROM jsonb_each(m) e WHERE jsonb_typeof(e.value) <> 'string') THEN
        RAISE EXCEPTION 'data source "%": options.mapping must be an object {"column": "attribute path"}', s.name
              USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT k INTO bad FROM jsonb_object_keys(m) k WHERE NOT k = ANY (cs._intercom_company_columns()) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'data source "%": options.mapping cannot fill cs.customers.%', s.name, bad
              USING ERRCODE = 'object_not_in_prerequisite_state', HINT = format('Columns: %s.', array_to_string(cs._intercom_company_columns(), ', '));
    END IF;
    IF nm IS NULL THEN
        PERFORM cs._unmappable(format('company %s has no name', iid));
    END IF;
    IF v_mrr < 0 OR v_mrr >= 1e8 THEN
        PERFORM cs._unmappable(format('company %s: monthly_spend %s is out of range', iid, v_mrr));
    END IF;
    IF v_emp < 0 OR v_emp >= 1e8 THEN
        PERFORM cs._unmappable(format('company %s: size %s is out of range', iid, v_emp));
    END IF;
    -- Mapped attributes ("custom_attributes.renewal_date", "plan.name"), dates as unix seconds or ISO text.
    SELECT coalesce(jsonb_object_agg(e.key,
               CASE WHEN e.key IN ('contract_start_date', 'contract_end_date')
                    THEN to_jsonb(cs._parse_time(p #>> string_to_array(e.value, '.'))::date)
                    WHEN e.key = 'seats_licensed' THEN to_jsonb(cs._number(e.value, p #>> string_to_array(e.value, '.')))
                    ELSE to_jsonb(nullif(btrim(p #>> string_to_array(e.value, '.')), '')) END), '{}')
      INTO v FROM jsonb_each_text(m) e;
    v := jsonb_strip_nulls(v);
    c := coalesce(cs.resolve_customer(s.system, 'company', iid), cs.resolve_customer(s.system, 'external_id', ext));
    IF c IS NULL AND dom IS NOT NULL THEN
        c := cs._unkeyed_by_domain(s.system, 'company', dom);
    END IF;
    IF c IS NULL THEN
        nxt := jsonb_populate_record(NULL::cs.customers, v || jsonb_strip_nulls(jsonb_build_object(
                   'external_id', coalesce(ext, 'intercom:' || iid), 'name', nm, 'industry', coalesce(v ->> 'industry', nullif(p ->> 'industry', '')),
                   'size', cs._size_band(v_emp), 'mrr', v_mrr, 'domain', dom)));
        INSERT INTO cs.customers (external_id, name, industry, size, mrr, domain, segment, csm, seats_licensed,
                                  contract_start_date, contract_end_date)
        VALUES (nxt.external_id, nxt.name, nxt.industry, nxt.size, nxt.mrr, nxt.domain, nxt.segment, nxt.csm,
                nxt.seats_licensed, nxt.contract_start_date, nxt.contract_end_date)
        RETURNING id INTO c;
        res := 'inserted';
    ELSE
        SELECT * INTO cur FROM cs.customers u WHERE u.id = c;
        -- what the company says, over what the customer has
        nxt := jsonb_populate_record(cur, v || jsonb_strip_nulls(jsonb_build_object(
                   'name', nm, 'industry', coalesce(v ->> 'industry', nullif(p ->> 'industry', '')),
                   'size', cs._size_band(v_emp), 'mrr', v_mrr, 'domain', dom)));
        UPDATE cs.customers u
           SET name = nxt.name, industry = nxt.industry, size = nxt.size, mrr = nxt.mrr, domain = nxt.domain,
               segment = nxt.segment, csm = nxt.csm, seats_licensed = nxt.seats_licensed,
               contract_start_date = nxt.contract_start_date, contract_end_date = nxt.contract_end_date
         WHERE u.id = c
           AND (u.name, u.industry, u.size, u.mrr, u.domain, u.segment, u.csm, u.seats_licensed, u.contract_start_date, u.contract_end_date)
               IS DISTINCT FROM (nxt.name, nxt.industry, nxt.size, nxt.mrr, nxt.domain, nxt.segment, nxt.csm, nxt.seats_licensed,
                                 nxt.contract_start_date, nxt.contract_end_date);
        res := CASE WHEN FOUND THEN 'updated' ELSE 'unchanged' END;
    END IF;
    PERFORM cs._learn_key(s.system, 'company', iid, c);
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs._ingest_intercom_company(cs.data_sources, jsonb) IS
    'Internal: loads one Intercom company: the customer of its company key, external_id = company_id or website domain, else a new one (external_id = company_id, else intercom:<id>); name, industry, size as size band, monthly_spend as MRR, and options.mapping {column: attribute path} for industry, segment, csm, seats_licensed and contract dates (custom_attributes.x, plan.name); learns the company key.';

------------------------------------------------------------------------------
-- Dispatch and retries
------------------------------------------------------------------------------

-- One Salesforce or Intercom record, through the loader of its format.  Every
-- record of these sources passes here with its field names (the Salesforce
-- ones in lower case): the place a per-record check of the fields belongs.
CREATE OR REPLACE FUNCTION cs._ingest_crm(s cs.data_sources, p jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    res text;
    rid text;
BEGIN
    IF s.format LIKE 'salesforce\_%' THEN
        p := cs._lower_keys(p);
    END IF;
    res := CASE s.format
        WHEN 'salesforce_account' THEN cs._ingest_salesforce_account(s, p)
        WHEN 'salesforce_contact' THEN cs._ingest_salesforce_contact(s, p)
        WHEN 'salesforce_opportunity' THEN cs._ingest_salesforce_opportunity(s, p)
        WHEN 'salesforce_task' THEN cs._ingest_salesforce_task(s, p)
        WHEN 'intercom_conversation' THEN cs._ingest_intercom_conversation(s, p)
        WHEN 'intercom_company' THEN cs._ingest_intercom_company(s, p) END;
    -- The record loaded: its older rejected versions are superseded (a retry
    -- of one would bring old values back).
    IF s.format LIKE 'salesforce\_%' THEN
        rid := cs.salesforce_id(p ->> 'id');
        DELETE FROM cs.ingest_rejects r
         WHERE r.source = s.name AND coalesce(r.payload ->> 'Id', r.payload ->> 'ID', r.payload ->> 'id') IN (rid, left(rid, 15));
    ELSE
        DELETE FROM cs.ingest_rejects r WHERE r.source = s.name AND r.payload ->> 'id' = p ->> 'id';
    END IF;
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs._ingest_crm(cs.data_sources, jsonb) IS
    'Internal: loads one Salesforce (keys lower-cased: Data Loader headers are upper case) or Intercom record through the loader of its source''s format, and removes the rejects of older versions of the record (same id); returns inserted, updated or unchanged.';

-- Loads the stored rejects of a source again: a webhook is delivered once, so
-- a record that waited for its customer loads when retried.
CREATE OR REPLACE FUNCTION cs.retry_rejects(source text)
RETURNS cs.ingest_result
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    res cs.ingest_result := (0, 0, 0, 0)::cs.ingest_result;
    sub cs.ingest_result;
    r   cs.ingest_rejects;
BEGIN
    PERFORM cs._source(source);
    FOR r IN SELECT * FROM cs.ingest_rejects x WHERE x.source = retry_rejects.source AND jsonb_typeof(x.payload) <> 'string'
              ORDER BY x.id LOOP
        sub := cs.ingest(source, r.payload);
        res := (res.inserted + sub.inserted, res.updated + sub.updated, res.unchanged + sub.unchanged, res.rejected + sub.rejected)::cs.ingest_result;
        -- a retry is not a new delivery
        UPDATE cs.ingest_rejects x SET times_seen = r.times_seen, received_at = r.received_at WHERE x.id = r.id;
    END LOOP;
    RETURN res;
END;
$$;
COMMENT ON FUNCTION cs.retry_rejects(text) IS
    'Loads every stored reject of a source again (invalid JSON excepted), for example once the missing customer or key exists: records that load leave cs.ingest_rejects, the others keep their reason (updated), times_seen and received_at. Returns the counts.';
