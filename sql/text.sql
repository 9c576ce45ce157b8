-- Text signals: sentiment rules, tone, categories and their rules, hostile input,
-- the text features of the catalog and the cancellation-intent alert.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
-- start without the shipped churn model: this test's scores must not depend on it
DELETE FROM cs.models;
SET TIME ZONE 'UTC';
\set VERBOSITY terse

------------------------------------------------------------------------------
-- sentiment: lexicon and rules
------------------------------------------------------------------------------
SELECT t, round(cs.sentiment(t)::numeric, 3) AS sentiment
  FROM (VALUES ('The new dashboard is good.'),
               ('The new dashboard is bad.'),
               ('The export runs every night at 2am.'),
               ('')) v(t);

-- negation flips and damps, also through "n't" and up to three words back;
-- a comma or a "but" ends its reach
SELECT t, round(cs.sentiment(t)::numeric, 3) AS sentiment
  FROM (VALUES ('The new dashboard is not good.'),
               ('The new dashboard isn''t good.'),
               ('The new dashboard isn’t good.'),
               ('It is never really that good.'),
               ('Not a bad release at all.'),
               ('Not now, good work.'),
               ('No problems since the update.'),
               ('Nothing but problems since the update.')) v(t);

-- boosters raise, dampeners lower the magnitude in the word's direction
SELECT cs.sentiment('The support was extremely good.') > cs.sentiment('The support was good.') AS booster_up,
       cs.sentiment('The support was slightly good.') < cs.sentiment('The support was good.') AS damper_down,
       cs.sentiment('The support was extremely bad.') < cs.sentiment('The support was bad.') AS booster_negative;

-- but: what comes after it weighs more
SELECT round(cs.sentiment('The product is great but support is terrible.')::numeric, 3) AS great_but_terrible,
       round(cs.sentiment('Support is terrible but the product is great.')::numeric, 3) AS terrible_but_great;

-- exclamation marks (up to four) and a word in capitals among others emphasise;
-- a text all in capitals does not
SELECT round(cs.sentiment('Great job.')::numeric, 3) AS plain,
       round(cs.sentiment('Great job!')::numeric, 3) AS one_mark,
       round(cs.sentiment('Great job!!!!')::numeric, 3) AS four_marks,
       round(cs.sentiment('Great job!!!!!!!!')::numeric, 3) AS eight_marks,
       round(cs.sentiment('GREAT job.')::numeric, 3) AS capitals,
       round(cs.sentiment('GREAT JOB.')::numeric, 3) AS all_capitals;

-- emoticons and emoji are lexicon entries
SELECT t, round(cs.sentiment(t)::numeric, 3) AS sentiment
  FROM (VALUES ('Fixed, thanks :)'), ('Still broken :('), ('Report sent 👍'), ('Report sent 😡')) v(t);

-- two-word lexicon terms and domain terms of support tickets
SELECT round(cs.sentiment('I can''t stand this screen.')::numeric, 3) AS cant_stand,
       round(cs.sentiment('The app is slow and buggy.')::numeric, 3) AS slow_buggy,
       round(cs.sentiment('Please add a user to our account.')::numeric, 3) AS request;

-- bounded, NULL in NULL out
SELECT cs.sentiment(NULL) IS NULL AS null_in_null_out,
       bool_and(cs.sentiment(t) BETWEEN -1 AND 1) AS bounded
  FROM (VALUES ('good good good great awesome excellent love love love!!!!'),
               ('bad bad bad terrible awful horrible hate hate hate!!!!'),
               (repeat('😍', 1000))) v(t);

------------------------------------------------------------------------------
-- tone
------------------------------------------------------------------------------
SELECT cs.tone('Hi team, could you please check the export? Thanks!');
SELECT cs.tone('URGENT: production is down, fix it right now!!');
SELECT cs.tone('This is unacceptable. Third time this month, I am fed up.');
SELECT cs.tone('');
-- acronyms are not shouting; a capitalised known word or three capitalised words are;
-- a text all in capitals is a style
SELECT cs.tone(t) -> 'cues' -> 'anger' AS anger_cues
  FROM (VALUES ('The API sync via SSO drops CSV rows.'), ('NOTHING works today.'),
               ('FIX THIS NOW please.'), ('ALL CAPS TICKET TEXT.')) v(t);
-- a phrase does not span a comma
SELECT cs.tone('right, now we know') -> 'cues' -> 'urgency' AS no_phrase;

------------------------------------------------------------------------------
-- categories
------------------------------------------------------------------------------
SELECT t, cs.ticket_category(t)
  FROM (VALUES ('We were charged twice on the last invoice.'),
               ('The report page crashed with an error.'),
               ('Dashboards take forever to load, latency is awful.'),
               ('Feature request: it would be nice to have dark mode.'),
               ('Is there a tutorial on how to add a user?'),
               ('The Salesforce sync via the API stopped working.'),
               ('We need SSO and 2FA for our security review.'),
               ('Please cancel our subscription at renewal.'),
               ('We are evaluating a competitor that is cheaper.'),
               ('Lovely weather today.'),
               ('')) v(t);
-- stemming: inflections match the rule's word
SELECT cs.ticket_category('Refunds were promised; we keep getting charged.') AS inflections;
SELECT cs.ticket_category(NULL) IS NULL AS null_in_null_out;
-- several categories, sorted
SELECT cs.ticket_category('Cancel now: your API crashed and the invoice is wrong, we switch to a competitor.') AS sorted;

-- rules are configurable: a vendor name, and a negative weight that vetoes
INSERT INTO cs.text_category_rules (category, kind, term, weight) VALUES ('competitor_mention', 'word', 'Acmeflow', 1);
SELECT cs.ticket_category('We had a demo of Acmeflow.') AS vendor_name;
INSERT INTO cs.text_category_rules (category, kind, term, weight) VALUES ('billing', 'phrase', 'charge of the account', -1);
SELECT cs.ticket_category('Who is in charge of the account now?') AS vetoed;
SELECT category, kind, term, weight, query FROM cs.text_category_rules
 WHERE term IN ('Acmeflow', 'charge of the account') ORDER BY term;

-- removing a category's rules removes the category (and its pre-filter)
DELETE FROM cs.text_category_rules WHERE category = 'security';
SELECT cs.ticket_category('We need SSO and 2FA for our security review.') AS without_security_rules,
       (SELECT count(*) FROM cs.text_category_filters WHERE category = 'security') AS security_filters,
       (SELECT count(*) FROM cs.text_category_filters) AS filters;

-- bad rules are refused with SQLSTATE 22023 (invalid_parameter_value)
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO cs.text_category_rules (category, kind, term) VALUES ('Billing', 'word', 'invoice');
INSERT INTO cs.text_category_rules (category, kind, term) VALUES ('billing', 'regex', 'inv.*');
INSERT INTO cs.text_category_rules (category, kind, term) VALUES ('billing', 'word', 'the');
INSERT INTO cs.text_category_rules (category, kind, term) VALUES ('billing', 'word', 'credit card');
INSERT INTO cs.text_category_rules (category, kind, term) VALUES ('billing', 'phrase', 'not working');
INSERT INTO cs.text_category_rules (category, kind, term) VALUES ('billing', 'word', '   ');
INSERT INTO cs.text_category_rules (category, kind, term, weight) VALUES ('billing', 'word', 'fee', 0);
INSERT INTO cs.text_category_rules (category, kind, term, weight) VALUES ('billing', 'word', 'fee', 'NaN');
UPDATE cs.text_category_rules SET term = 'and' WHERE term = 'invoice';
\set VERBOSITY sqlstate
INSERT INTO cs.text_category_rules (category, kind, term) VALUES ('billing', 'phrase', 'how to');
\set VERBOSITY terse
SELECT count(*) AS rules_unchanged FROM cs.text_category_rules WHERE term = 'invoice';

------------------------------------------------------------------------------
-- hostile input
------------------------------------------------------------------------------
-- bytes invalid in UTF-8 cannot become text; bytes of another encoding convert first
SELECT cs.sentiment(convert_from('\xc328'::bytea, 'UTF8'));
SELECT cs.sentiment(convert_from('\x676f6f64206361666520ac'::bytea, 'LATIN9')) > 0 AS latin9_ok;
-- empty and blank
SELECT cs.sentiment(' '), cs.ticket_category(' '), cs.tone(' ') ->> 'anger' AS anger;
-- a 10 MB text: linear, one sentence buffer; categories read the first 100 kB
SELECT round(cs.sentiment(repeat('This is bad. ', 800000))::numeric, 3) AS big_sentiment,
       cs.ticket_category(repeat('Good. ', 50000) || 'Please cancel.') AS cancel_after_100kb,
       cs.ticket_category(repeat('Please cancel. ', 700000)) AS big_categories,
       (cs.tone(repeat('Please fix this ASAP! ', 500000)) -> 'cues') AS big_tone;
-- 500,000 words without a sentence end are scored in chunks of one buffer
SELECT round(cs.sentiment(repeat('really good ', 500000))::numeric, 3) AS long_sentence;
-- one word of 10 MB, control bytes
SELECT cs.sentiment(repeat('a', 10000000)) AS one_word,
       cs.sentiment(E'good\x01\x02 bad\x7f') = cs.sentiment('good bad') AS controls;

------------------------------------------------------------------------------
-- features 31-36: point in time, NaN without text
------------------------------------------------------------------------------
SELECT position, name, source FROM cs.feature_catalog WHERE position > 30 ORDER BY position;

INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 't-a', 'Angry', 'smb', 500, 10, 'csm_01'),
 ('00000000-0000-0000-0000-0000000000a2', 't-b', 'Quiet', 'smb', 300, 5,  'csm_01');
INSERT INTO cs.support_tickets (customer_id, opened_at, priority, status, subject, body) VALUES
 ('00000000-0000-0000-0000-0000000000a1', '2026-03-25', 'high', 'open', 'Export broken', 'The export fails again. This is terrible.'),
 ('00000000-0000-0000-0000-0000000000a1', '2026-03-10', 'normal', 'open', 'Thanks', 'Great training session, thank you!'),
 ('00000000-0000-0000-0000-0000000000a1', '2026-02-01', 'normal', 'open', 'Renewal', 'If nothing improves we will cancel and look at a competitor.'),
 ('00000000-0000-0000-0000-0000000000a1', '2025-11-01', 'normal', 'open', 'Old', 'We will cancel, this is awful.'),
 -- no text: counts as a ticket, not as a text
 ('00000000-0000-0000-0000-0000000000a1', '2026-03-30', 'low', 'open', NULL, '  '),
 -- after as_of: must not count
 ('00000000-0000-0000-0000-0000000000a1', '2026-04-05', 'low', 'open', 'Cancel', 'Cancel everything, switch to a competitor.'),
 ('00000000-0000-0000-0000-0000000000a2', '2026-03-20', 'low', 'open', NULL, NULL);
INSERT INTO cs.nps_responses (customer_id, score, comment, responded_at) VALUES
 ('00000000-0000-0000-0000-0000000000a1', 3, 'We are moving to a competitor.', '2026-03-15'),
 ('00000000-0000-0000-0000-0000000000a1', 2, '', '2026-03-20'),
 ('00000000-0000-0000-0000-0000000000a1', 9, 'Love it!', '2026-04-03');

SELECT round(cs.sentiment('Export broken. The export fails again. This is terrible.')::numeric, 3) AS t1,
       round(cs.sentiment('Thanks. Great training session, thank you!')::numeric, 3) AS t2,
       round(cs.sentiment('Renewal. If nothing improves we will cancel and look at a competitor.')::numeric, 3) AS t3,
       round(cs.sentiment('We are moving to a competitor.')::numeric, 3) AS nps;
-- as of 2026-04-01: 30 days hold tickets 1-2, 90 days tickets 1-3; mentions count
-- ticket 3 and the NPS comment; the latest non-blank comment is from 2026-03-15
SELECT fc.name, round(v::numeric, 3) AS value
  FROM cs.feature_catalog fc,
       LATERAL unnest(cs.features('00000000-0000-0000-0000-0000000000a1', '2026-04-01 00:00+00')) WITH ORDINALITY AS x(v, pos)
 WHERE x.pos = fc.position AND fc.position > 30
 ORDER BY fc.position;
-- later: the 2026-04-05 ticket and the 2026-04-03 comment count
SELECT fc.name, round(v::numeric, 3) AS value
  FROM cs.feature_catalog fc,
       LATERAL unnest(cs.features('00000000-0000-0000-0000-0000000000a1', '2026-04-06 00:00+00')) WITH ORDINALITY AS x(v, pos)
 WHERE x.pos = fc.position AND fc.position > 30
 ORDER BY fc.position;
-- a ticket without text: all text features missing
SELECT fc.name, v
  FROM cs.feature_catalog fc,
       LATERAL unnest(cs.features('00000000-0000-0000-0000-0000000000a2', '2026-04-01 00:00+00')) WITH ORDINALITY AS x(v, pos)
 WHERE x.pos = fc.position AND fc.position > 30
 ORDER BY fc.position;

------------------------------------------------------------------------------
-- the cancellation_intent alert and its next best action
------------------------------------------------------------------------------
SELECT name, alert_type, condition, severity_thresholds, base_severity, cooldown
  FROM cs.alert_rules WHERE name = 'cancellation_intent';
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm) VALUES
 ('00000000-0000-0000-0000-0000000000a3', 't-c', 'Leaving', 'smb', 800, 10, 'csm_02'),
 ('00000000-0000-0000-0000-0000000000a4', 't-d', 'Staying', 'smb', 800, 10, 'csm_02');
INSERT INTO cs.support_tickets (customer_id, opened_at, priority, status, subject, body) VALUES
 ('00000000-0000-0000-0000-0000000000a3', now() - interval '3 days', 'normal', 'open', 'Contract', 'Please tell us how to cancel at renewal.'),
 ('00000000-0000-0000-0000-0000000000a4', now() - interval '3 days', 'normal', 'open', 'Contract', 'Please send the renewal quote.');
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-0000000000a3', '00000000-0000-0000-0000-0000000000a4']::uuid[]) AS refreshed;
SELECT c.external_id, a.severity, a.title, a.status
  FROM cs.alerts a JOIN cs.customers c ON c.id = a.customer_id
  JOIN cs.alert_rules r ON r.id = a.rule_id
 WHERE r.name = 'cancellation_intent' ORDER BY c.external_id;
SELECT s ->> 'playbook' AS first_suggestion
  FROM cs.alerts a JOIN cs.alert_rules r ON r.id = a.rule_id,
       LATERAL (SELECT a.suggested_actions -> 0 AS s) x
 WHERE r.name = 'cancellation_intent';
-- a second mention escalates to critical
INSERT INTO cs.nps_responses (customer_id, score, comment, responded_at) VALUES
 ('00000000-0000-0000-0000-0000000000a3', 1, 'We will cancel.', now() - interval '1 day');
SELECT cs.refresh(ARRAY['00000000-0000-0000-0000-0000000000a3']::uuid[]) AS refreshed;
SELECT a.severity, a.fire_count
  FROM cs.alerts a JOIN cs.alert_rules r ON r.id = a.rule_id WHERE r.name = 'cancellation_intent';

------------------------------------------------------------------------------
-- the cache of text signals: features are the same whatever the cache holds
------------------------------------------------------------------------------
CREATE TEMP TABLE t0 AS SELECT now() AS t;
INSERT INTO cs.customers (id, external_id, name, segment, mrr, seats_licensed, csm) VALUES
 ('00000000-0000-0000-0000-0000000000b1', 't-e', 'Cached', 'smb', 500, 10, 'csm_03'),
 ('00000000-0000-0000-0000-0000000000b2', 't-f', 'Cached too', 'smb', 500, 10, 'csm_03');
INSERT INTO cs.support_tickets (customer_id, opened_at, priority, status, subject, body)
SELECT customer_id, (SELECT t FROM t0) - age, 'normal', 'open', subject, body FROM (VALUES
 ('00000000-0000-0000-0000-0000000000b1'::uuid, interval '2 days', 'cache-renewal', 'We will cancel and move to a competitor.'),
 ('00000000-0000-0000-0000-0000000000b1', interval '10 days', 'cache-thanks', 'Great support, thank you!'),
 ('00000000-0000-0000-0000-0000000000b1', interval '40 days', 'cache-slow', 'The dashboard is slow and we are leaving soon.'),
 ('00000000-0000-0000-0000-0000000000b1', interval '5 days', NULL, '  '),             -- no text
 ('00000000-0000-0000-0000-0000000000b1', interval '95 days', 'cache-margin', 'We might cancel.'),   -- in the 7-day margin
 ('00000000-0000-0000-0000-0000000000b1', interval '200 days', 'cache-old', 'Cancel it all.'),
 ('00000000-0000-0000-0000-0000000000b2', interval '20 days', 'cache-billing', 'Please explain the invoice.')) v (customer_id, age, subject, body);
INSERT INTO cs.nps_responses (customer_id, score, comment, responded_at)
SELECT customer_id, score, comment, (SELECT t FROM t0) - age FROM (VALUES
 ('00000000-0000-0000-0000-0000000000b1'::uuid, 4, 'cache: thinking about another tool', interval '3 days'),
 ('00000000-0000-0000-0000-0000000000b1', 8, '', interval '4 days'),
 ('00000000-0000-0000-0000-0000000000b2', 2, 'cache: we will cancel', interval '300 days')) v (customer_id, score, comment, age);

-- the features of both customers at t0, one full and one partial computation
-- (md5 of the vectors), and the text features 31-35 of the first
CREATE FUNCTION pg_temp.fv(full_refresh boolean) RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(f.customer_id || ' ' || f.features::text, ',' ORDER BY f.customer_id))
      FROM cs.compute_features(CASE WHEN NOT full_refresh
                                    THEN '{00000000-0000-0000-0000-0000000000b1,00000000-0000-0000-0000-0000000000b2}'::uuid[] END,
                               (SELECT t FROM t0)) f
     WHERE f.customer_id IN ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000b2')
$$;
CREATE FUNCTION pg_temp.text_features() RETURNS text LANGUAGE sql AS $$
    SELECT array_agg(round(v::numeric, 3) ORDER BY pos)::text
      FROM unnest(cs.features('00000000-0000-0000-0000-0000000000b1', (SELECT t FROM t0))) WITH ORDINALITY AS x(v, pos)
     WHERE pos BETWEEN 31 AND 35
$$;
-- the cache as it stands: entries valid now (text and rules unchanged), by text
CREATE FUNCTION pg_temp.cache() RETURNS TABLE (source text, txt text, valid boolean, sentiment numeric, categories text[])
LANGUAGE sql AS $$
    SELECT * FROM (
        SELECT s.source, coalesce(t.subject, n.comment, '(row gone)') AS txt,
               s.rules_stamp = cs._text_signals_stamp()
               AND s.text_hash = hashtextextended(coalesce(nullif(btrim(concat_ws('. ', nullif(btrim(t.subject), ''), nullif(btrim(t.body), ''))), ''), n.comment), 0),
               round(s.sentiment::numeric, 3), s.categories
          FROM cs.text_signals s
          LEFT JOIN cs.support_tickets t ON s.source = 'ticket' AND t.id = s.id
          LEFT JOIN cs.nps_responses n ON s.source = 'nps_comment' AND n.id = s.id) q
     ORDER BY q.txt COLLATE "C", q.source, q.round, q.categories
$$;

-- (a) empty cache: computed inline
TRUNCATE cs.text_signals;
SELECT pg_temp.fv(true) AS scratch \gset
SELECT pg_temp.fv(false) = :'scratch' AS partial_same, pg_temp.text_features() AS features_31_35;
-- the maintenance fills exactly the texts of the last 90 days: not the one
-- without text, the blank comment, nor the rows older than 90 days
SELECT cs._refresh_text_signals() AS computed;
SELECT * FROM pg_temp.cache();
SELECT pg_temp.fv(true) = :'scratch' AS full_same, pg_temp.fv(false) = :'scratch' AS partial_same;
-- nothing to do the second time
SELECT cs._refresh_text_signals() AS computed;
-- a valid entry is what the features read: a doctored one shows (then removed)
UPDATE cs.text_signals s SET categories = '{cancellation_intent}'
  FROM cs.support_tickets t WHERE s.source = 'ticket' AND t.id = s.id AND t.subject = 'cache-thanks';
SELECT pg_temp.text_features() AS doctored_31_35;
DELETE FROM cs.text_signals s USING cs.support_tickets t
 WHERE s.source = 'ticket' AND t.id = s.id AND t.subject = 'cache-thanks';
SELECT pg_temp.text_features() AS features_31_35, pg_temp.fv(true) = :'scratch' AS full_same;
SELECT cs._refresh_text_signals() AS computed;

-- a stale entry (the text changed after caching) is ignored: the features
-- follow the new text, as computed from scratch
UPDATE cs.support_tickets SET body = 'Great support, but we will cancel anyway.' WHERE subject = 'cache-thanks';
SELECT valid FROM pg_temp.cache() WHERE txt = 'cache-thanks';
SELECT pg_temp.text_features() AS features_31_35;
BEGIN;
DELETE FROM cs.text_signals;
SELECT pg_temp.fv(true) AS scratch \gset
ROLLBACK;
SELECT pg_temp.fv(true) = :'scratch' AS full_same, pg_temp.fv(false) = :'scratch' AS partial_same;
SELECT cs._refresh_text_signals() AS computed;
SELECT txt, valid, sentiment, categories FROM pg_temp.cache() WHERE txt = 'cache-thanks';
SELECT pg_temp.fv(true) = :'scratch' AS full_same;

-- (b) a rule of another category leaves the entries valid; a rule of the two
-- the features count invalidates them all, and the features follow the new rule
INSERT INTO cs.text_category_rules (category, kind, term, weight) VALUES ('billing', 'word', 'quote', 1);
SELECT count(*) FILTER (WHERE valid) AS valid, count(*) AS entries FROM pg_temp.cache();
INSERT INTO cs.text_category_rules (category, kind, term, weight) VALUES ('cancellation_intent', 'word', 'leaving', 1);
SELECT count(*) FILTER (WHERE valid) AS valid, count(*) AS entries FROM pg_temp.cache();
SELECT pg_temp.text_features() AS features_31_35;
BEGIN;
DELETE FROM cs.text_signals;
SELECT pg_temp.fv(true) AS scratch \gset
ROLLBACK;
SELECT pg_temp.fv(true) = :'scratch' AS full_same, pg_temp.fv(false) = :'scratch' AS partial_same;
SELECT cs._refresh_text_signals() = (SELECT count(*) FROM pg_temp.cache()) AS all_recomputed;
SELECT txt, valid, categories FROM pg_temp.cache() WHERE txt = 'cache-slow';
SELECT pg_temp.fv(true) = :'scratch' AS full_same, pg_temp.fv(false) = :'scratch' AS partial_same;
-- so does removing the rule again: the entries were computed with it
DELETE FROM cs.text_category_rules WHERE term IN ('quote', 'leaving');
SELECT count(*) FILTER (WHERE valid) AS valid FROM pg_temp.cache();

-- (c) entries of rows gone or older than 97 days are removed; those of the
-- 7-day margin kept; a full refresh keeps the cache current
SELECT cs._refresh_text_signals() > 0 AS computed;
INSERT INTO cs.text_signals (source, id, text_hash, rules_stamp, sentiment, categories)
SELECT 'ticket', t.id, 0, 0, 0::float8, NULL::text[] FROM cs.support_tickets t WHERE t.subject IN ('cache-margin', 'cache-old')
UNION ALL SELECT 'ticket', 1000000 + 1, 0, 0, 0, NULL
UNION ALL SELECT 'nps_comment', n.id, 0, 0, NULL, NULL FROM cs.nps_responses n WHERE n.comment = 'cache: we will cancel'
UNION ALL SELECT 'nps_comment', 1000000 + 2, 0, 0, NULL, NULL;
SELECT source, txt, valid FROM pg_temp.cache() WHERE NOT valid;
SELECT cs._refresh_text_signals() AS computed;
SELECT source, txt, valid FROM pg_temp.cache() WHERE NOT valid;
UPDATE cs.support_tickets SET subject = 'cache-renewal!' WHERE subject = 'cache-renewal';
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT count(*) FILTER (WHERE valid) AS valid, count(*) AS entries,
       (SELECT count(*) FROM cs.support_tickets t
         WHERE t.opened_at > now() - interval '90 days' AND t.opened_at <= now()
           AND nullif(btrim(concat_ws('. ', nullif(btrim(subject), ''), nullif(btrim(body), ''))), '') IS NOT NULL)
       + (SELECT count(*) FROM cs.nps_responses n
           WHERE n.responded_at > now() - interval '90 days' AND n.responded_at <= now()
             AND btrim(n.comment) <> '') AS texts_in_window
  FROM pg_temp.cache();
