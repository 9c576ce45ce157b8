-- What sources deliver: the words of the generic CSV loader's columns (value
-- mapping, options.values) and the fields of every load (schema drift).
--
-- Value mapping.  A csv source may map the words of its columns onto ours:
-- options.values = {"column": {"source word": "our word", ...}}.  Source
-- words match case-insensitively after trimming; a word without a mapping is
-- kept, except in a column with a fixed vocabulary (a CHECK (column IN
-- (...)) constraint), where it must be one of our words (again compared
-- case-insensitively, stored in our spelling) or the row is rejected with a
-- reason naming the value and the column.  A trigger validates options.values
-- when a source is created or changed.
--
-- Schema drift.  Every load notes the fields it delivers (cs._note_fields: the
-- CSV header, the top-level keys of JSON records) in cs.source_fields.  A
-- batch is a transaction: every record loaded for a source in one
-- transaction (a cscopilot-load run, one cs.ingest call, a webhook) counts
-- together.  The first batch of a source is its baseline; later ones are
-- compared with it: a field of the baseline that a batch lacks is missing, a
-- field outside it is new (cs.source_drift, check schema_drift of
-- cs.data_quality, a data alert).  A required field (cs._required_fields)
-- that no record of a batch delivers fails the batch at commit with SQLSTATE
-- 22P04; a mapped CSV header missing from a batch rejects its rows instead of
-- loading them as empty.  cs.accept_source_fields takes the latest batch's
-- fields as the new baseline.

------------------------------------------------------------------------------
-- Value mapping of the generic CSV loader
------------------------------------------------------------------------------

-- Our words for a column with a fixed vocabulary, read from its CHECK
-- constraint of the form column IN ('a', 'b', ...); NULL for any other column.
CREATE OR REPLACE FUNCTION cs._vocabulary(tbl regclass, col text)
RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
    SELECT (SELECT array_agg(replace(w.m[1], '''''', '''') ORDER BY w.o)
              FROM regexp_matches(d.def, '''((?:[^'']|'''')*)''::', 'g') WITH ORDINALITY w(m, o))
      FROM pg_constraint c
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
     CROSS JOIN LATERAL (SELECT pg_get_constraintdef(c.oid) AS def) d
     WHERE c.conrelid = tbl AND c.contype = 'c' AND cardinality(c.conkey) = 1 AND a.attname = col
       AND d.def ~ ('^CHECK \(+\(?' || quote_ident(col) || '\)?(::text)? = ANY \(+ARRAY\[(''([^'']|'''')*''::[a-z ]+(, )?)+\](\)::text\[\])?\)+$')
     ORDER BY c.conname
     LIMIT 1
$$;
COMMENT ON FUNCTION cs._vocabulary(regclass, text) IS
    'Internal: the words a column accepts when a CHECK (column IN (...)) constraint fixes them, in the constraint''s order; NULL for a column without a fixed vocabulary.';

-- Validates options.values of a csv source: per mapped target column an object
-- {"source word": "our word" or null}, our words valid for the column.
CREATE OR REPLACE FUNCTION cs._check_csv_values(s cs.data_sources)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    vals  jsonb := s.options -> 'values';
    tgt   regclass := format('cs.%I', s.options ->> 'target')::regclass;
    col   text;
    words jsonb;
    vocab text[];
    typ   text;
    bad   text[];
    w     text;
BEGIN
    IF vals IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(vals) <> 'object' THEN
        RAISE EXCEPTION 'csv source "%": options.values must be an object {"column": {"source word": "our word"}}', s.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR col, words IN SELECT e.key, e.value FROM jsonb_each(vals) e ORDER BY e.key LOOP
        SELECT format_type(a.atttypid, a.atttypmod) INTO typ FROM pg_attribute a
         WHERE a.attrelid = tgt AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'csv source "%": options.values names column "%", which cs.% does not have', s.name, col, s.options ->> 'target'
                USING ERRCODE = 'undefined_column';
        END IF;
        IF NOT (s.options -> 'mapping') ? col THEN
            RAISE EXCEPTION 'csv source "%": options.values maps the words of column "%", which options.mapping does not map', s.name, col
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Map the column to its CSV header in options.mapping first.';
        END IF;
        IF jsonb_typeof(words) IS DISTINCT FROM 'object'
           OR EXISTS (SELECT 1 FROM jsonb_each(words) e WHERE jsonb_typeof(e.value) NOT IN ('string', 'null')) THEN
            RAISE EXCEPTION 'csv source "%": options.values.% must be an object {"source word": "our word"} (our word a string, or null for empty)', s.name, col
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- Source words are compared trimmed and in lower case: two that are one word must agree.
        SELECT string_agg(format('"%s"', x.k), ', ' ORDER BY x.k) INTO w
          FROM (SELECT e.key AS k, lower(btrim(e.key)) AS n, e.value AS v FROM jsonb_each(words) e) x
         WHERE EXISTS (SELECT 1 FROM jsonb_each(words) o
                        WHERE lower(btrim(o.key)) = x.n AND o.key <> x.k AND o.value IS DISTINCT FROM x.v);
        IF w IS NOT NULL THEN
            RAISE EXCEPTION 'csv source "%": options.values.% maps the same source word to different words: %', s.name, col, w
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Source words match case-insensitively after trimming.';
        END IF;
        vocab := cs._vocabulary(tgt, col);
        IF vocab IS NOT NULL THEN
            SELECT array_agg(DISTINCT e.value #>> '{}') INTO bad FROM jsonb_each(words) e
             WHERE jsonb_typeof(e.value) = 'string' AND NOT (e.value #>> '{}') = ANY (vocab);
            IF bad IS NOT NULL THEN
                RAISE EXCEPTION 'csv source "%": options.values.% maps to words cs.%.% does not accept: %', s.name, col,
                                s.options ->> 'target', col, (SELECT string_agg(format('"%s"', b), ', ') FROM unnest(bad) b)
                    USING ERRCODE = 'check_violation',
                          DETAIL = format('cs.%s.%s accepts %s.', s.options ->> 'target', col, array_to_string(vocab, ', '));
            END IF;
        ELSE
            -- No fixed words: each must at least be a value of the column's type.
            bad := NULL;
            FOR w IN SELECT e.value #>> '{}' FROM jsonb_each(words) e WHERE jsonb_typeof(e.value) = 'string' ORDER BY 1 LOOP
                BEGIN
                    EXECUTE format('SELECT %L::%s', w, typ);
                EXCEPTION WHEN data_exception THEN
                    bad := bad || w;
                END;
            END LOOP;
            IF bad IS NOT NULL THEN
                RAISE EXCEPTION 'csv source "%": options.values.% maps to words that are not of type %: %', s.name, col, typ,
                                (SELECT string_agg(format('"%s"', b), ', ') FROM unnest(bad) b)
                    USING ERRCODE = 'invalid_text_representation';
            END IF;
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION cs._check_csv_values(cs.data_sources) IS
    'Internal: errors when options.values of a csv source is unusable: a column the target lacks (42703) or the mapping does not map (22023), a malformed map or one source word mapped two ways (22023), words outside the column''s fixed vocabulary (23514, naming them) or not of its type (22P02).';

-- Validates the options of a csv source when it is created or changed.
CREATE OR REPLACE FUNCTION cs._data_sources_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    PERFORM cs._check_csv_options(NEW);
    PERFORM cs._check_csv_values(NEW);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION cs._data_sources_validate() IS
    'Internal: trigger function refusing a csv source whose target, mapping or value mapping is unusable.';
CREATE OR REPLACE TRIGGER data_sources_validate BEFORE INSERT OR UPDATE OF options, format ON cs.data_sources
    FOR EACH ROW WHEN (NEW.format = 'csv') EXECUTE FUNCTION cs._data_sources_validate();
COMMENT ON TRIGGER data_sources_validate ON cs.data_sources IS
    'Refuses a csv source whose options (target, mapping, values) cannot load, when it is created or changed.';

-- The value of a mapped column in one CSV row: the header's text, mapped
-- through options.values, checked against the column's vocabulary.  A header
-- the row lacks and that no row of the batch delivered rejects the row: a
-- renamed or dropped column must not load as empty.
CREATE OR REPLACE FUNCTION cs._csv_value(s cs.data_sources, col text, hdr text, p jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    v     text;
    k     text;
    w     jsonb;
    vocab text[];
BEGIN
    IF NOT p ? hdr THEN
        IF NOT EXISTS (SELECT 1 FROM cs.source_fields f
                        WHERE f.source = s.name AND f.field = hdr AND f.last_seen_at = now()) THEN
            PERFORM cs._unmappable(format('header "%s" (mapped to column %s) is missing from the batch: the row is not loaded with %s empty (see check schema_drift of cs.data_quality)',
                                          hdr, col, col));
        END IF;
        RETURN NULL;
    END IF;
    v := nullif(p ->> hdr, '');
    IF v IS NULL THEN
        RETURN NULL;
    END IF;
    k := lower(btrim(v));
    IF (s.options -> 'values') ? col THEN
        SELECT e.value INTO w FROM jsonb_each(s.options -> 'values' -> col) e WHERE lower(btrim(e.key)) = k LIMIT 1;
        IF FOUND THEN
            RETURN w #>> '{}';
        END IF;
    END IF;
    vocab := cs._vocabulary(format('cs.%I', s.options ->> 'target')::regclass, col);
    IF vocab IS NULL THEN
        RETURN v;
    END IF;
    SELECT x INTO v FROM unnest(vocab) x WHERE lower(x) = k LIMIT 1;
    IF FOUND THEN
        RETURN v;
    END IF;
    v := p ->> hdr;
    PERFORM cs._unmappable(format('value "%s" of header "%s" (column %s) is not one of %s, and options.values maps no such word',
                                  v, hdr, col, array_to_string(vocab, ', ')));
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION cs._csv_value(cs.data_sources, text, text, jsonb) IS
    'Internal: the value of a mapped column in a CSV row: mapped through options.values (case-insensitive, trimmed), else kept, or for a column with a fixed vocabulary matched to our word; a reject when the word is unknown or the header is missing from the batch.';

------------------------------------------------------------------------------
-- Schema drift
------------------------------------------------------------------------------

-- The fields of one record: its top-level keys (none for a non-object).
CREATE OR REPLACE FUNCTION cs._record_fields(record jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(record) = 'object' THEN ARRAY(SELECT jsonb_object_keys(record)) ELSE '{}' END
$$;
COMMENT ON FUNCTION cs._record_fields(jsonb) IS 'Internal: the top-level keys of a JSON record (a CSV row as {header: value}), empty for anything but an object.';

-- The fields a source's loader cannot do without: a batch that delivers none
-- of them fails.  JSON and export formats: a list per format (a new format
-- adds its line).  csv sources: the headers mapped to NOT NULL columns without
-- a default, the header of the row's id (source_id or external_id) and the
-- customer header.
CREATE OR REPLACE FUNCTION cs._required_fields(s cs.data_sources)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    tgt text := s.options ->> 'target';
BEGIN
    RETURN CASE s.format
        WHEN 'stripe_invoice' THEN ARRAY['id', 'object', 'created', 'status']
        WHEN 'stripe_invoice_csv' THEN ARRAY['id', 'Date (UTC)']
        WHEN 'zendesk_ticket' THEN ARRAY['id', 'created_at', 'status', 'organization_id']
        WHEN 'hubspot_company' THEN ARRAY['Record ID', 'Company name']
        WHEN 'hubspot_contact' THEN ARRAY['Record ID']
        WHEN 'mixpanel' THEN ARRAY['event', 'properties']
        WHEN 'amplitude' THEN ARRAY['event_type', 'event_time']
        WHEN 'csv' THEN ARRAY(
            SELECT DISTINCT h FROM (
                SELECT e.value AS h FROM jsonb_each_text(s.options -> 'mapping') e
                  JOIN pg_attribute a ON a.attrelid = to_regclass(format('cs.%I', tgt)) AND a.attname = e.key
                 WHERE (a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '')
                    OR e.key IN ('source_id', 'external_id')
                UNION ALL
                SELECT s.options ->> 'customer' WHERE tgt <> 'customers') r
             WHERE h IS NOT NULL ORDER BY h)
        ELSE '{}'::text[] END;
END;
$$;
COMMENT ON FUNCTION cs._required_fields(cs.data_sources) IS
    'Internal: the fields a batch of the source must deliver (else it fails with 22P04): per format a fixed list (Stripe invoices id, object, created, status; Zendesk id, created_at, status, organization_id; ...), for csv sources the headers mapped to NOT NULL columns without default, to source_id or external_id, and the customer header.';

-- The hook every loader calls with the fields of its batch (or of each
-- record: calls in one transaction add up to one batch).  The first batch of a
-- source is its baseline; in a later batch, fields of the source not
-- delivered are marked missing and fields never seen are recorded as new.
-- Cheap when called again with fields already noted in the transaction.
CREATE OR REPLACE FUNCTION cs._note_fields(source text, fields text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
#variable_conflict use_column
DECLARE
    f     text[];
    first boolean;
BEGIN
    SELECT array_agg(x.fld ORDER BY x.o) INTO f
      FROM (SELECT u.fld, min(u.o) AS o FROM unnest(fields) WITH ORDINALITY u(fld, o)
             WHERE u.fld IS NOT NULL AND u.fld <> '' GROUP BY u.fld) x;
    IF f IS NULL THEN
        RETURN;
    END IF;
    -- Every field noted already in this transaction: nothing changes.
    IF (SELECT count(*) FROM cs.source_fields x
         WHERE x.source = _note_fields.source AND x.field = ANY (f) AND x.last_seen_at = now()) = cardinality(f) THEN
        RETURN;
    END IF;
    -- The first batch (the source has no field from an earlier one) is the baseline.
    first := NOT EXISTS (SELECT 1 FROM cs.source_fields x WHERE x.source = _note_fields.source AND x.first_seen_at <> now());
    INSERT INTO cs.source_fields AS x (source, field, position, first_seen_at, last_seen_at, missing_since, baseline)
    SELECT _note_fields.source, u.fld, u.o, now(), now(), NULL, first FROM unnest(f) WITH ORDINALITY u(fld, o)
    ON CONFLICT (source, field) DO UPDATE
       SET last_seen_at = excluded.last_seen_at, missing_since = NULL, position = excluded.position
     WHERE x.last_seen_at <> excluded.last_seen_at OR x.missing_since IS NOT NULL;
    UPDATE cs.source_fields x SET missing_since = now()
     WHERE x.source = _note_fields.source AND x.last_seen_at <> now() AND x.missing_since IS NULL;
END;
$$;
COMMENT ON FUNCTION cs._note_fields(text, text[]) IS
    'Hook for loaders: notes the fields (CSV header, top-level JSON keys) a batch of the source delivers in cs.source_fields. Calls in one transaction are one batch; the first batch is the baseline; later ones mark baseline fields they lack missing and unknown fields new (cs.source_drift). A required field no call of the transaction delivered fails the transaction at commit (SQLSTATE 22P04).';

-- At commit, once per source a transaction loaded: a required field no
-- record of the batch delivered fails the batch.
CREATE OR REPLACE FUNCTION cs._check_batch_fields()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    s       cs.data_sources;
    first   text;
    missing text[];
BEGIN
    SELECT min(x.field) INTO first FROM cs.source_fields x WHERE x.source = NEW.source AND x.last_seen_at = now();
    IF first IS NULL OR NEW.field <> first THEN
        RETURN NULL;
    END IF;
    SELECT * INTO s FROM cs.data_sources d WHERE d.name = NEW.source;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(r ORDER BY r) INTO missing FROM unnest(cs._required_fields(s)) r
     WHERE NOT EXISTS (SELECT 1 FROM cs.source_fields x WHERE x.source = s.name AND x.field = r AND x.last_seen_at = now());
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'source "%": required field% % missing from the batch, nothing of the batch is loaded', s.name,
                        CASE WHEN cardinality(missing) > 1 THEN 's' ELSE '' END,
                        (SELECT string_agg(format('"%s"', m), ', ') FROM unnest(missing) m)
            USING ERRCODE = 'bad_copy_file_format',
                  DETAIL = format('No record of the batch has %s; the %s loader cannot do without %s.',
                                  CASE WHEN cardinality(missing) = 1 THEN 'this field' ELSE 'these fields' END, s.format,
                                  (SELECT string_agg(format('"%s"', r), ', ') FROM unnest(cs._required_fields(s)) r)),
                  HINT = CASE WHEN s.format = 'csv'
                              THEN 'If the export renamed the header, map the new name in options.mapping of cs.data_sources, then load the file again.'
                              ELSE 'Check the export (a changed format or the wrong file), then load it again.' END;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION cs._check_batch_fields() IS
    'Internal: deferred trigger function on cs.source_fields: at commit, fails a transaction that loaded a batch of a source without one of its required fields (cs._required_fields), with SQLSTATE 22P04.';
-- A constraint trigger has no CREATE OR REPLACE: created once, kept by later runs.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = 'cs.source_fields'::regclass AND t.tgname = 'source_fields_required') THEN
        CREATE CONSTRAINT TRIGGER source_fields_required AFTER INSERT OR UPDATE ON cs.source_fields
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cs._check_batch_fields();
    END IF;
END;
$$;
COMMENT ON TRIGGER source_fields_required ON cs.source_fields IS
    'At commit: a batch that lacks a field its loader requires fails whole (SQLSTATE 22P04).';

-- Drift per source: what the latest batch lacks of the baseline and what it
-- has beyond it.  A field that went missing in the load where another
-- appeared is read as renamed (paired in column order).
CREATE OR REPLACE VIEW cs.source_drift WITH (security_invoker = true) AS
WITH gone AS (
    SELECT f.source, f.field, f.missing_since AS at,
           row_number() OVER (PARTITION BY f.source, f.missing_since ORDER BY f.position, f.field) AS k
      FROM cs.source_fields f WHERE f.baseline AND f.missing_since IS NOT NULL
), came AS (
    SELECT f.source, f.field, f.first_seen_at AS at,
           row_number() OVER (PARTITION BY f.source, f.first_seen_at ORDER BY f.position, f.field) AS k
      FROM cs.source_fields f WHERE NOT f.baseline AND f.missing_since IS NULL
), pairs AS (
    SELECT g.source, g.field AS old, c.field AS new, g.at
      FROM gone g JOIN came c ON c.source = g.source AND c.at = g.at AND c.k = g.k
), per AS (
    SELECT src.source,
           ARRAY(SELECT g.field FROM gone g WHERE g.source = src.source ORDER BY g.field) AS missing,
           ARRAY(SELECT c.field FROM came c WHERE c.source = src.source ORDER BY c.field) AS new_fields,
           ARRAY(SELECT format('%s -> %s', p.old, p.new) FROM pairs p WHERE p.source = src.source ORDER BY p.old) AS renamed,
           ARRAY(SELECT g.field FROM gone g WHERE g.source = src.source
                    AND NOT EXISTS (SELECT 1 FROM pairs p WHERE p.source = g.source AND p.old = g.field) ORDER BY g.field) AS only_missing,
           ARRAY(SELECT c.field FROM came c WHERE c.source = src.source
                    AND NOT EXISTS (SELECT 1 FROM pairs p WHERE p.source = c.source AND p.new = c.field) ORDER BY c.field) AS only_new,
           (SELECT min(x.at) FROM (SELECT g.at FROM gone g WHERE g.source = src.source
                                    UNION ALL SELECT c.at FROM came c WHERE c.source = src.source) x) AS since
      FROM (SELECT source FROM gone UNION SELECT source FROM came) src
)
SELECT p.source, p.missing, p.new_fields, p.renamed,
       p.since,
       format('%s: %s', p.source, concat_ws('; ',
           CASE WHEN cardinality(p.renamed) > 0 THEN
                'renamed ' || (SELECT string_agg(format('"%s" to "%s"', q.old, q.new), ', ' ORDER BY q.old) FROM pairs q WHERE q.source = p.source) END,
           CASE WHEN cardinality(p.only_missing) > 0 THEN
                'missing ' || (SELECT string_agg(format('"%s"', m), ', ' ORDER BY m) FROM unnest(p.only_missing) m) END,
           CASE WHEN cardinality(p.only_new) > 0 THEN
                'new ' || (SELECT string_agg(format('"%s"', n), ', ' ORDER BY n) FROM unnest(p.only_new) n) END)) AS detail
  FROM per p;
COMMENT ON VIEW cs.source_drift IS 'Sources whose latest batch differs from their accepted fields (cs.source_fields): missing and new fields, and the pairs read as renamed. The check schema_drift of cs.data_quality reports each row; cs.accept_source_fields clears it.';
COMMENT ON COLUMN cs.source_drift.source IS 'Source name.';
COMMENT ON COLUMN cs.source_drift.missing IS 'Fields of the baseline the latest batch did not deliver (renamed ones included).';
COMMENT ON COLUMN cs.source_drift.new_fields IS 'Fields the latest batch delivered that are not in the baseline (renamed ones included).';
COMMENT ON COLUMN cs.source_drift.renamed IS 'old -> new: a field that went missing in the load where another appeared, paired in column order.';
COMMENT ON COLUMN cs.source_drift.since IS 'When the earliest of these differences appeared.';
COMMENT ON COLUMN cs.source_drift.detail IS 'The finding in a sentence: the source, the renamed, missing and new fields.';

-- Takes the fields of the source's latest batch as its baseline: missing
-- fields are forgotten, new ones accepted.
CREATE OR REPLACE FUNCTION cs.accept_source_fields(source text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    dropped text[];
    added   text[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM cs.data_sources d WHERE d.name = accept_source_fields.source) THEN
        RAISE EXCEPTION 'unknown data source "%"', source USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cs.source_fields f WHERE f.source = accept_source_fields.source) THEN
        RAISE EXCEPTION 'data source "%" has delivered no fields yet', source
            USING ERRCODE = 'no_data_found', HINT = 'Its first load becomes the baseline.';
    END IF;
    WITH d AS (
        DELETE FROM cs.source_fields f WHERE f.source = accept_source_fields.source AND f.missing_since IS NOT NULL
        RETURNING f.field
    )
    SELECT array_agg(d.field ORDER BY d.field) INTO dropped FROM d;
    WITH a AS (
        UPDATE cs.source_fields f SET baseline = true WHERE f.source = accept_source_fields.source AND NOT f.baseline
        RETURNING f.field
    )
    SELECT array_agg(a.field ORDER BY a.field) INTO added FROM a;
    RETURN jsonb_build_object('source', source, 'added', coalesce(added, '{}'), 'dropped', coalesce(dropped, '{}'));
END;
$$;
COMMENT ON FUNCTION cs.accept_source_fields(text) IS
    'Accepts a source''s schema change: the fields of its latest batch become the baseline (new fields accepted, missing ones forgotten), which clears its schema_drift finding; returns the added and dropped fields. Admin only.';
