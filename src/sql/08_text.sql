-- Text signals of support tickets and NPS comments: lexicon sentiment, tone
-- indicators and rule-based categories (src/text.c, README "Text signals").

CREATE FUNCTION cs.sentiment(body text) RETURNS float8
    AS 'MODULE_PATHNAME', 'cs_sentiment' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.sentiment(text) IS
    'Sentiment of a text in [-1, 1] (VADER lexicon and rules: negation, boosters, but-clauses, exclamation, capitals, emoticons); 0 when no word carries sentiment, NULL for NULL; text invalid in the database encoding raises 22021.';

CREATE FUNCTION cs.tone(body text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'cs_tone' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs.tone(text) IS
    'Tone of a text: {"urgency", "anger", "politeness"} scores in [0, 1] and "cues", the words, phrases and marks (exclamation, capitals, negative sentiment) behind each.';

CREATE FUNCTION cs._text_prefix(body text, max_bytes int) RETURNS text
    AS 'MODULE_PATHNAME', 'cs_text_prefix' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION cs._text_prefix(text, int) IS
    'Internal: the text cut to at most max_bytes bytes of whole characters; text invalid in the database encoding raises 22021.';

CREATE TABLE cs.text_category_rules (
    category  text   NOT NULL,
    kind      text   NOT NULL,
    term      text   NOT NULL,
    weight    float8 NOT NULL DEFAULT 1,
    query     tsquery NOT NULL,
    PRIMARY KEY (category, kind, term)
);
COMMENT ON TABLE cs.text_category_rules IS
    'Rules of cs.ticket_category: a text belongs to a category when the weights of the category''s rules it matches sum to 1 or more.  Validated on write.';
COMMENT ON COLUMN cs.text_category_rules.category IS 'Category name: lower-case letters, digits and underscores, starting with a letter.';
COMMENT ON COLUMN cs.text_category_rules.kind IS 'word (one word, any inflection) or phrase (two or more words in order, any inflections).';
COMMENT ON COLUMN cs.text_category_rules.term IS 'The word or phrase, matched after English stemming (to_tsvector(''english'', ...)); stop words cannot be matched.';
COMMENT ON COLUMN cs.text_category_rules.weight IS 'Contribution to the category, non-zero between -10 and 10; a negative weight counts against it.';
COMMENT ON COLUMN cs.text_category_rules.query IS 'The term as a text search query; set on write.';

-- Validates a rule and derives its query.
CREATE FUNCTION cs._text_category_rules_check() RETURNS trigger
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
CREATE TRIGGER text_category_rules_check BEFORE INSERT OR UPDATE ON cs.text_category_rules
    FOR EACH ROW EXECUTE FUNCTION cs._text_category_rules_check();

-- Per category, the OR of its positive rules: a text that matches none of them
-- cannot reach the category's threshold, so most texts cost one match per
-- category instead of one per rule.
CREATE TABLE cs.text_category_filters (
    category  text PRIMARY KEY,
    query     tsquery NOT NULL
);
COMMENT ON TABLE cs.text_category_filters IS
    'Internal: per category the OR of the queries of its positive-weight rules in cs.text_category_rules, rebuilt on every change of the rules.';
COMMENT ON COLUMN cs.text_category_filters.category IS 'The category.';
COMMENT ON COLUMN cs.text_category_filters.query IS 'Matches every text that matches one of the category''s positive-weight rules.';

-- Rebuilds cs.text_category_filters from the rules.
CREATE FUNCTION cs._text_category_filters_rebuild() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    DELETE FROM cs.text_category_filters;
    INSERT INTO cs.text_category_filters (category, query)
    SELECT category, string_agg('(' || query::text || ')', ' | ' ORDER BY kind, term)::tsquery
      FROM cs.text_category_rules WHERE weight > 0
     GROUP BY category;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION cs._text_category_filters_rebuild() IS 'Internal: rebuilds cs.text_category_filters after a change of cs.text_category_rules.';
CREATE TRIGGER text_category_filters_rebuild AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cs.text_category_rules
    FOR EACH STATEMENT EXECUTE FUNCTION cs._text_category_filters_rebuild();

INSERT INTO cs.text_category_rules (category, kind, term, weight, query)
SELECT category, kind, term, weight, ''::tsquery FROM (VALUES
 ('billing', 'word', 'invoice', 1), ('billing', 'word', 'billing', 1), ('billing', 'word', 'bill', 1),
 ('billing', 'word', 'charge', 1), ('billing', 'word', 'overcharged', 1), ('billing', 'word', 'refund', 1),
 ('billing', 'word', 'payment', 1), ('billing', 'word', 'pricing', 1), ('billing', 'word', 'price', 0.6),
 ('billing', 'word', 'receipt', 1), ('billing', 'word', 'vat', 1), ('billing', 'word', 'tax', 0.6),
 ('billing', 'word', 'subscription', 0.5), ('billing', 'phrase', 'credit card', 1),
 ('billing', 'phrase', 'purchase order', 1), ('billing', 'word', 'discount', 0.6),
 ('bug', 'word', 'bug', 1), ('bug', 'word', 'buggy', 1), ('bug', 'word', 'error', 1),
 ('bug', 'word', 'crash', 1), ('bug', 'word', 'broken', 1), ('bug', 'word', 'glitch', 1),
 ('bug', 'word', 'exception', 0.8), ('bug', 'word', 'fail', 0.6), ('bug', 'word', 'wrong', 0.5),
 ('bug', 'phrase', 'stopped working', 1),
 ('bug', 'word', 'blank', 0.5), ('bug', 'word', 'incorrect', 0.6), ('bug', 'word', 'regression', 0.8),
 ('performance', 'word', 'slow', 1), ('performance', 'word', 'latency', 1), ('performance', 'word', 'timeout', 1),
 ('performance', 'word', 'lag', 1), ('performance', 'word', 'laggy', 1), ('performance', 'word', 'sluggish', 1),
 ('performance', 'word', 'performance', 0.7), ('performance', 'word', 'speed', 0.6),
 ('performance', 'phrase', 'takes forever', 1), ('performance', 'word', 'loading', 0.4),
 ('performance', 'word', 'seconds', 0.4), ('performance', 'word', 'minutes', 0.4), ('performance', 'word', 'faster', 0.6),
 ('feature_request', 'phrase', 'feature request', 1), ('feature_request', 'word', 'suggestion', 1),
 ('feature_request', 'word', 'roadmap', 1), ('feature_request', 'word', 'wish', 0.7),
 ('feature_request', 'phrase', 'would be nice', 1), ('feature_request', 'phrase', 'would be great', 1),
 ('feature_request', 'phrase', 'would love', 1), ('feature_request', 'phrase', 'please add', 1),
 ('feature_request', 'phrase', 'add support', 0.8), ('feature_request', 'phrase', 'missing feature', 1),
 ('feature_request', 'word', 'request', 0.5),
 ('feature_request', 'word', 'option', 0.4),
 ('onboarding_howto', 'word', 'tutorial', 1), ('onboarding_howto', 'word', 'documentation', 1),
 ('onboarding_howto', 'word', 'docs', 1), ('onboarding_howto', 'word', 'guide', 1),
 ('onboarding_howto', 'word', 'onboarding', 1), ('onboarding_howto', 'word', 'training', 1),
 ('onboarding_howto', 'word', 'setup', 0.7), ('onboarding_howto', 'phrase', 'get started', 1),
 ('onboarding_howto', 'phrase', 'add a user', 1), ('onboarding_howto', 'word', 'configure', 0.6),
 ('onboarding_howto', 'word', 'question', 0.5), ('onboarding_howto', 'word', 'invite', 0.6),
 ('onboarding_howto', 'word', 'explain', 0.6), ('onboarding_howto', 'word', 'walkthrough', 1),
 ('integration', 'word', 'integration', 1), ('integration', 'word', 'api', 1), ('integration', 'word', 'webhook', 1),
 ('integration', 'word', 'salesforce', 1), ('integration', 'word', 'hubspot', 1), ('integration', 'word', 'slack', 1),
 ('integration', 'word', 'zapier', 1), ('integration', 'word', 'connector', 1), ('integration', 'word', 'sync', 0.7),
 ('integration', 'word', 'import', 0.5), ('integration', 'word', 'export', 0.5), ('integration', 'word', 'endpoint', 1),
 ('integration', 'word', 'token', 0.5), ('integration', 'word', 'jira', 1),
 ('security', 'word', 'security', 1), ('security', 'word', 'breach', 1), ('security', 'word', 'vulnerability', 1),
 ('security', 'word', 'password', 0.7), ('security', 'word', '2fa', 1), ('security', 'word', 'mfa', 1),
 ('security', 'word', 'gdpr', 1), ('security', 'word', 'phishing', 1), ('security', 'phrase', 'unauthorized access', 1),
 ('security', 'phrase', 'data leak', 1), ('security', 'word', 'permissions', 0.6), ('security', 'word', 'compliance', 0.7),
 ('security', 'word', 'sso', 0.6), ('security', 'word', 'encryption', 1), ('security', 'word', 'audit', 0.6),
 ('security', 'word', 'suspicious', 1),
 ('cancellation_intent', 'word', 'cancel', 1), ('cancellation_intent', 'word', 'cancellation', 1),
 ('cancellation_intent', 'word', 'terminate', 1), ('cancellation_intent', 'word', 'termination', 1),
 ('cancellation_intent', 'phrase', 'end our contract', 1), ('cancellation_intent', 'phrase', 'close our account', 1),
 ('cancellation_intent', 'phrase', 'stop paying', 1), ('cancellation_intent', 'word', 'churn', 1),
 ('cancellation_intent', 'word', 'unsubscribe', 0.6), ('cancellation_intent', 'word', 'downgrade', 0.6),
 ('cancellation_intent', 'phrase', 'keep paying', 1),
 ('cancellation_intent', 'phrase', 'won''t renew', 1),
 ('competitor_mention', 'word', 'competitor', 1), ('competitor_mention', 'word', 'alternative', 0.8),
 ('competitor_mention', 'word', 'vendor', 0.6), ('competitor_mention', 'word', 'switch', 0.5),
 ('competitor_mention', 'word', 'evaluating', 0.5), ('competitor_mention', 'word', 'cheaper', 0.5),
 ('competitor_mention', 'phrase', 'another tool', 1), ('competitor_mention', 'phrase', 'another provider', 1),
 ('competitor_mention', 'word', 'migrate', 0.5), ('competitor_mention', 'phrase', 'switch to another', 1)
) AS r (category, kind, term, weight);

-- The categories of a text among the wanted ones (all when NULL), sorted; the
-- first 100 kB count.
CREATE FUNCTION cs._text_categories(body text, wanted text[]) RETURNS text[]
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
CREATE FUNCTION cs.ticket_category(body text) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN body IS NOT NULL THEN cs._text_categories(body, NULL) END;
COMMENT ON FUNCTION cs.ticket_category(text) IS
    'Categories of a ticket or comment text (billing, bug, performance, feature_request, onboarding_howto, integration, security, cancellation_intent, competitor_mention by default), sorted, from the rules in cs.text_category_rules matched after English stemming; the first 100 kB of the text count; {} when none, NULL for NULL.';

-- Statistics for the planner from the start: without them it scans these
-- small tables through their indexes, several times slower per text.
ANALYZE cs.text_category_rules, cs.text_category_filters;

-- Cache of the text signals the features read: a full refresh classifies
-- about two texts per customer, each stemmed for the category prefilter, and
-- most of them did not change since the refresh before.  Entries are checked
-- against the text and the rules at every read, so a missing or stale entry
-- never changes a feature: it is only slower (the text is classified inline).
CREATE TABLE cs.text_signals (
    source       text    NOT NULL CHECK (source IN ('ticket', 'nps_comment')),
    id           bigint  NOT NULL,
    text_hash    bigint  NOT NULL,
    rules_stamp  bigint  NOT NULL,
    sentiment    float8,
    categories   text[],
    PRIMARY KEY (source, id)
);
COMMENT ON TABLE cs.text_signals IS
    'Internal: cached text signals of the tickets and NPS comments of the last 90 days, filled by cs._refresh_text_signals() (full refreshes) and read by cs.compute_features() when text_hash and rules_stamp still match.';
COMMENT ON COLUMN cs.text_signals.source IS 'ticket (cs.support_tickets) or nps_comment (cs.nps_responses).';
COMMENT ON COLUMN cs.text_signals.id IS 'The id of the ticket or NPS response.';
COMMENT ON COLUMN cs.text_signals.text_hash IS 'hashtextextended(text, 0) of the text classified: "subject. body" of a ticket (trimmed, blank parts left out), the comment of an NPS response.';
COMMENT ON COLUMN cs.text_signals.rules_stamp IS 'cs._text_signals_stamp() when the entry was computed; an entry of another stamp is ignored.';
COMMENT ON COLUMN cs.text_signals.sentiment IS 'cs.sentiment of a ticket''s text; NULL for NPS comments (the features take no sentiment of them in the 90-day window).';
COMMENT ON COLUMN cs.text_signals.categories IS 'Categories cancellation_intent and competitor_mention of the text, as cs.compute_features() computes them: NULL when the text matches no positive rule of either.';

-- What the cached signals depend on besides the text: the rules and filters of
-- the two categories the features count, and the extension version (the
-- sentiment lexicon ships with it).  A change to any of them gives another
-- stamp, read in the same snapshot as the rules themselves, so concurrent
-- rule changes cannot leave an entry that passes for current.
CREATE FUNCTION cs._text_signals_stamp() RETURNS bigint
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
CREATE FUNCTION cs._refresh_text_signals() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
SET jit = off
SET work_mem = '256MB'
AS $$
DECLARE
    stamp bigint := cs._text_signals_stamp();
    n bigint;
BEGIN
    INSERT INTO cs.text_signals AS s (source, id, text_hash, rules_stamp, sentiment, categories)
    SELECT x.source, x.id, x.h, stamp, x.sent, x.cats
      FROM (SELECT 'ticket' AS source, x.id, x.h, cs.sentiment(txt) AS sent,
                   CASE WHEN to_tsvector('english', cs._text_prefix(txt, 100000)) @@ mf.q
                        THEN cs._text_categories(txt, '{cancellation_intent,competitor_mention}') END AS cats
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
                                  AND c.text_hash = x.h AND c.rules_stamp = stamp)
            UNION ALL
            SELECT 'nps_comment', x.id, x.h, NULL,
                   CASE WHEN to_tsvector('english', cs._text_prefix(comment, 100000)) @@ mf.q
                        THEN cs._text_categories(comment, '{cancellation_intent,competitor_mention}') END
              FROM (SELECT id, comment, hashtextextended(comment, 0) AS h
                      FROM cs.nps_responses
                     WHERE responded_at > now() - interval '90 days' AND responded_at <= now()
                       AND btrim(comment) <> '') x
             CROSS JOIN (SELECT string_agg('(' || query::text || ')', ' | ')::tsquery AS q
                           FROM cs.text_category_filters
                          WHERE category IN ('cancellation_intent', 'competitor_mention')) mf
             WHERE NOT EXISTS (SELECT 1 FROM cs.text_signals c
                                WHERE c.source = 'nps_comment' AND c.id = x.id
                                  AND c.text_hash = x.h AND c.rules_stamp = stamp)) x
    ON CONFLICT (source, id) DO UPDATE
       SET text_hash = excluded.text_hash, rules_stamp = excluded.rules_stamp,
           sentiment = excluded.sentiment, categories = excluded.categories;
    GET DIAGNOSTICS n = ROW_COUNT;

    DELETE FROM cs.text_signals s
     WHERE s.source = 'ticket'
       AND NOT EXISTS (SELECT 1 FROM cs.support_tickets t
                        WHERE t.id = s.id AND t.opened_at > now() - interval '97 days');
    DELETE FROM cs.text_signals s
     WHERE s.source = 'nps_comment'
       AND NOT EXISTS (SELECT 1 FROM cs.nps_responses r
                        WHERE r.id = s.id AND r.responded_at > now() - interval '97 days');
    RETURN n;
END;
$$;
COMMENT ON FUNCTION cs._refresh_text_signals() IS
    'Internal: computes the cs.text_signals entries missing or stale for the tickets and NPS comments of the last 90 days and removes those of rows gone or older than 97 days; returns the number computed.  Called by full refreshes.';
