-- Text signals of support tickets and NPS comments: lexicon sentiment, tone
-- indicators and rule-based categories (src/text.c, README "Text signals").

CREATE OR REPLACE FUNCTION cs.sentiment(body text) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_sentiment' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.sentiment(text) IS
    'Sentiment of a text in [-1, 1] (VADER lexicon and rules: negation, boosters, but-clauses, exclamation, capitals, emoticons); 0 when no word carries sentiment, NULL for NULL; text invalid in the database encoding raises 22021.';

CREATE OR REPLACE FUNCTION cs.tone(body text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'cs_tone' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.tone(text) IS
    'Tone of a text: {"urgency", "anger", "politeness"} scores in [0, 1] and "cues", the words, phrases and marks (exclamation, capitals, negative sentiment) behind each.';

CREATE OR REPLACE FUNCTION cs._text_prefix(body text, max_bytes int) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_text_prefix' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._text_prefix(text, int) IS
    'Internal: the text cut to at most max_bytes bytes of whole characters; text invalid in the database encoding raises 22021.';

-- Validates a rule and derives its query.
CREATE OR REPLACE FUNCTION cs._text_category_rules_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    nlex int;
BEGIN
    IF NEW.category IS NULL OR NEW.category !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid text category "%"', NEW.category
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Categories are lower-case letters, digits and underscores, starting with a letter, at most 63 characters.';
    END IF;
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('word', 'phrase') THEN
        RAISE EXCEPTION 'invalid text category rule kind "%"', NEW.kind
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The kind is word or phrase.';
    END IF;
    IF NEW.weight IS NULL OR NEW.weight = 0 OR NOT (NEW.weight BETWEEN -10 AND 10) THEN
        RAISE EXCEPTION 'text category rule weight must be non-zero between -10 and 10, not %', NEW.weight
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.term IS NULL OR btrim(NEW.term) = '' OR length(NEW.term) > 200 THEN
        RAISE EXCEPTION 'text category rule term must be 1 to 200 characters, not blank'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    NEW.term := btrim(NEW.term);
    nlex := coalesce(array_length(tsvector_to_array(to_tsvector('english', NEW.term)), 1), 0);
    IF NEW.kind = 'word' THEN
        IF NEW.term ~ '\s' OR nlex <> 1 THEN
            RAISE EXCEPTION 'text category rule "%": "%" is not one indexable word', NEW.category, NEW.term
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A word rule needs one word that is not an English stop word; use kind phrase for several.';
        END IF;
        NEW.query := plainto_tsquery('english', NEW.term);
    ELSE
        NEW.query := phraseto_tsquery('english', NEW.term);
        IF nlex < 2 OR length(regexp_replace(NEW.query::text, '[^<]', '', 'g')) < 1 THEN
            RAISE EXCEPTION 'text category rule "%": phrase "%" has fewer than two indexable words', NEW.category, NEW.term
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Stop words (not, to, how, ...) are not indexed: a phrase needs at least two other words.';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION cs._text_category_rules_check() IS 'Internal: validates a cs.text_category_rules row and sets its query.';
CREATE OR REPLACE TRIGGER text_category_rules_check BEFORE INSERT OR UPDATE ON cs.text_category_rules
    FOR EACH ROW EXECUTE FUNCTION cs._text_category_rules_check();

-- Rebuilds cs.text_category_filters from the rules.  On a Citus cluster both
-- are reference tables and the trigger fires on every node's placement of the
-- rules (TG_TABLE_NAME is then the placement, text_category_rules_<shard>):
-- each node rebuilds its own placement of the filters from its own placement
-- of the rules, in the same distributed transaction.  A write to the
-- reference table itself from there would be a distributed write nested in a
-- shard's statement, which Citus refuses.
CREATE OR REPLACE FUNCTION cs._text_category_filters_rebuild() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    rules   text := 'cs.text_category_rules';
    filters text := 'cs.text_category_filters';
BEGIN
    IF TG_TABLE_NAME <> 'text_category_rules' THEN
        rules := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
        EXECUTE 'SELECT format(''%I.%I'', ''cs'', ''text_category_filters_'' || s.shardid)
                   FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid = ''cs.text_category_filters''::regclass'
           INTO filters;
    END IF;
    EXECUTE format('DELETE FROM %s', filters);
    EXECUTE format('INSERT INTO %s (category, query)
                    SELECT category, string_agg(''('' || query::text || '')'', '' | '' ORDER BY kind, term)::tsquery
                      FROM %s WHERE weight > 0
                     GROUP BY category', filters, rules);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION cs._text_category_filters_rebuild() IS 'Internal: rebuilds cs.text_category_filters after a change of cs.text_category_rules (on a Citus cluster, each node''s placement from that node''s placement of the rules).';
CREATE OR REPLACE TRIGGER text_category_filters_rebuild AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cs.text_category_rules
    FOR EACH STATEMENT EXECUTE FUNCTION cs._text_category_filters_rebuild();

-- The SQL text of cs._text_categories(body, '{cancellation_intent,
-- competitor_mention}') written out, for the queries that classify texts by
-- the thousand (cs.compute_features, cs._refresh_text_signals): on a Citus
-- cluster those go to the shards, where the rules must be read in the
-- shard's query itself, not by a function nested in it.
CREATE OR REPLACE FUNCTION cs._signal_categories_sql(body text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT format($e$(SELECT coalesce(array_agg(m.category ORDER BY m.category), '{}'::text[])
                    FROM (SELECT r.category
                            FROM to_tsvector('english', cs._text_prefix(%1$s, 100000)) v,
                                 cs.text_category_filters f, cs.text_category_rules r
                           WHERE f.category IN ('cancellation_intent', 'competitor_mention')
                             AND v @@ f.query AND r.category = f.category AND v @@ r.query
                           GROUP BY r.category HAVING sum(r.weight) >= 1) m)$e$, body)
$$;
COMMENT ON FUNCTION cs._signal_categories_sql(text) IS
    'Internal: the SQL expression classifying the text expression body into the categories cancellation_intent and competitor_mention, as cs._text_categories does, with the rules read in the query itself.';

-- The categories of a text among the wanted ones (all when NULL), sorted; the
-- first 100 kB count.
CREATE OR REPLACE FUNCTION cs._text_categories(body text, wanted text[]) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(m.category ORDER BY m.category), '{}'::text[])
      FROM (SELECT r.category
              FROM pg_catalog.to_tsvector('english'::regconfig, cs._text_prefix(body, 100000)) v,
                   cs.text_category_filters f, cs.text_category_rules r
             WHERE (wanted IS NULL OR f.category OPERATOR(pg_catalog.=) ANY (wanted))
               AND v OPERATOR(pg_catalog.@@) f.query
               AND r.category OPERATOR(pg_catalog.=) f.category
               AND v OPERATOR(pg_catalog.@@) r.query
             GROUP BY r.category
            HAVING sum(r.weight) >= 1) m
$$;
COMMENT ON FUNCTION cs._text_categories(text, text[]) IS
    'Internal: cs.ticket_category restricted to the wanted categories (all when wanted is NULL); NULL text gives {}.';

-- Not STRICT, so that it inlines into the calling query: a wrapper that is
-- executed as a function of its own would plan the inner query on every call.
CREATE OR REPLACE FUNCTION cs.ticket_category(body text) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN body IS NOT NULL THEN cs._text_categories(body, NULL) END
$$;
COMMENT ON FUNCTION cs.ticket_category(text) IS
    'Categories of a ticket or comment text (billing, bug, performance, feature_request, onboarding_howto, integration, security, cancellation_intent, competitor_mention by default), sorted, from the rules in cs.text_category_rules matched after English stemming; the first 100 kB of the text count; {} when none, NULL for NULL.';

-- What the cached signals depend on besides the text: the rules and filters of
-- the two categories the features count, and the extension version (the
-- sentiment lexicon ships with it).  A change to any of them gives another
-- stamp, read in the same snapshot as the rules themselves, so concurrent
-- rule changes cannot leave an entry that passes for current.
CREATE OR REPLACE FUNCTION cs._text_signals_stamp() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, cs
AS $$
    SELECT hashtextextended(concat_ws(E'\n',
        (SELECT extversion FROM pg_extension WHERE extname = 'cscopilot'),
        (SELECT string_agg(concat_ws(' ', category, kind, term, weight, query), E'\n' ORDER BY category, kind, term)
           FROM cs.text_category_rules WHERE category IN ('cancellation_intent', 'competitor_mention')),
        '--',
        (SELECT string_agg(concat_ws(' ', category, query), E'\n' ORDER BY category)
           FROM cs.text_category_filters WHERE category IN ('cancellation_intent', 'competitor_mention'))), 0)
$$;
COMMENT ON FUNCTION cs._text_signals_stamp() IS
    'Internal: hash of what cached text signals depend on besides the text (extension version, rules and filters of cancellation_intent and competitor_mention); cs.text_signals entries of another stamp are ignored.';

-- Brings the cache up to date for the texts of the last 90 days (relative to
-- now()): computes the entries missing or stale, removes those of tickets and
-- responses gone or older than 97 days (a week of margin, so that texts
-- leaving the window are not computed again by a refresh with an earlier
-- as_of).  The expressions are those of cs.compute_features(), character for
-- character.  Returns the number of entries computed.
CREATE OR REPLACE FUNCTION cs._refresh_text_signals() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
SET jit = off
SET work_mem = '256MB'
AS $$
DECLARE
    stamp bigint := cs._text_signals_stamp();
    n bigint;
BEGIN
    PERFORM cs._refresh_lock();
    -- On a Citus cluster there is no cache: the feature queries classify the
    -- texts on the shards that hold them (a reference table of every text's
    -- signals would copy them to every node), and a stale or missing entry
    -- never changes a feature anyway.
    IF cs._is_distributed() THEN
        RETURN 0;
    END IF;
    EXECUTE format($q$
    INSERT INTO cs.text_signals AS s (source, id, text_hash, rules_stamp, sentiment, categories)
    SELECT x.source, x.id, x.h, $1, x.sent, x.cats
      FROM (SELECT 'ticket' AS source, x.id, x.h, cs.sentiment(txt) AS sent,
                   CASE WHEN to_tsvector('english', cs._text_prefix(txt, 100000)) @@ mf.q
                        THEN %1$s END AS cats
              FROM (SELECT id, txt, hashtextextended(txt, 0) AS h
                      FROM (-- OFFSET 0: each text is built once, not once per use
                            SELECT id,
                                   nullif(btrim(concat_ws('. ', nullif(btrim(subject), ''), nullif(btrim(body), ''))), '') AS txt
                              FROM cs.support_tickets
                             WHERE opened_at > now() - interval '90 days' AND opened_at <= now()
                            OFFSET 0) t
                     WHERE txt IS NOT NULL) x
             CROSS JOIN (SELECT string_agg('(' || query::text || ')', ' | ')::tsquery AS q
                           FROM cs.text_category_filters
                          WHERE category IN ('cancellation_intent', 'competitor_mention')) mf
             WHERE NOT EXISTS (SELECT 1 FROM cs.text_signals c
                                WHERE c.source = 'ticket' AND c.id = x.id
                                  AND c.text_hash = x.h AND c.rules_stamp = $1)
            UNION ALL
            SELECT 'nps_comment', x.id, x.h, NULL,
                   CASE WHEN to_tsvector('english', cs._text_prefix(comment, 100000)) @@ mf.q
                        THEN %2$s END
              FROM (SELECT id, comment, hashtextextended(comment, 0) AS h
                      FROM cs.nps_responses
                     WHERE responded_at > now() - interval '90 days' AND responded_at <= now()
                       AND btrim(comment) <> '') x
             CROSS JOIN (SELECT string_agg('(' || query::text || ')', ' | ')::tsquery AS q
                           FROM cs.text_category_filters
                          WHERE category IN ('cancellation_intent', 'competitor_mention')) mf
             WHERE NOT EXISTS (SELECT 1 FROM cs.text_signals c
                                WHERE c.source = 'nps_comment' AND c.id = x.id
                                  AND c.text_hash = x.h AND c.rules_stamp = $1)) x
    ON CONFLICT (source, id) DO UPDATE
       SET text_hash = excluded.text_hash, rules_stamp = excluded.rules_stamp,
           sentiment = excluded.sentiment, categories = excluded.categories$q$,
        cs._signal_categories_sql('txt'), cs._signal_categories_sql('comment'))
    USING stamp;
    GET DIAGNOSTICS n = ROW_COUNT;

    -- The ids still wanted are read first (on a Citus cluster the signal
    -- tables are distributed and this cache a reference table, which a
    -- DELETE may not join with them).
    DELETE FROM cs.text_signals s
     WHERE s.source = 'ticket'
       AND s.id <> ALL (ARRAY(SELECT t.id FROM cs.support_tickets t WHERE t.opened_at > now() - interval '97 days'));
    DELETE FROM cs.text_signals s
     WHERE s.source = 'nps_comment'
       AND s.id <> ALL (ARRAY(SELECT r.id FROM cs.nps_responses r WHERE r.responded_at > now() - interval '97 days'));
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._refresh_text_signals() IS
    'Internal: computes the cs.text_signals entries missing or stale for the tickets and NPS comments of the last 90 days and removes those of rows gone or older than 97 days; returns the number computed.  Called by full refreshes; does nothing on a Citus cluster, where the feature queries classify texts on the shards.';
