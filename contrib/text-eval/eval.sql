-- Accuracy and macro-F1 of cs.sentiment's sign and of cs.ticket_category against
-- the labelled sentences of contrib/text-eval/sentences.tsv.
--   psql -v file=contrib/text-eval/sentences.tsv -v threshold=0.05 -f contrib/text-eval/eval.sql
-- A sentiment s is positive when s >= threshold, negative when s <= -threshold,
-- neutral in between (VADER's customary 0.05).
\set QUIET on
\pset footer off
CREATE TEMP TABLE eval_raw (line text);
\set cmd '\\copy eval_raw FROM ' :'file' ' WITH (FORMAT text, DELIMITER E''\\x01'')'
:cmd
CREATE TEMP TABLE eval AS
SELECT n, f[1] AS source, f[2] AS sentiment,
       CASE WHEN f[3] = '-' THEN '{}'::text[] ELSE ARRAY(SELECT x FROM unnest(string_to_array(f[3], ',')) x ORDER BY x) END AS categories,
       f[4] AS body
  FROM (SELECT row_number() OVER () AS n, string_to_array(line, E'\t') AS f
          FROM eval_raw WHERE line !~ '^#' AND line NOT LIKE 'source	%') s;
ALTER TABLE eval ADD COLUMN score float8, ADD COLUMN predicted text, ADD COLUMN predicted_categories text[];
UPDATE eval SET score = cs.sentiment(body), predicted_categories = cs.ticket_category(body);
UPDATE eval SET predicted = CASE WHEN score >= :threshold THEN 'positive' WHEN score <= -:threshold THEN 'negative' ELSE 'neutral' END;

\echo '== sentences'
SELECT count(*) AS sentences,
       count(*) FILTER (WHERE sentiment = 'positive') AS positive,
       count(*) FILTER (WHERE sentiment = 'negative') AS negative,
       count(*) FILTER (WHERE sentiment = 'neutral') AS neutral,
       count(*) FILTER (WHERE source = 'ticket') AS tickets,
       count(*) FILTER (WHERE source = 'nps') AS nps_comments
  FROM eval;

\echo '== sentiment sign (threshold ' :threshold ')'
WITH cls AS (
    SELECT c, count(*) FILTER (WHERE predicted = c AND sentiment = c) AS tp,
              count(*) FILTER (WHERE predicted = c AND sentiment <> c) AS fp,
              count(*) FILTER (WHERE predicted <> c AND sentiment = c) AS fn
      FROM eval, unnest('{positive,negative,neutral}'::text[]) c GROUP BY c
), f AS (
    SELECT c, tp, fp, fn,
           CASE WHEN tp + fp > 0 THEN tp::float8 / (tp + fp) ELSE 0 END AS prec,
           CASE WHEN tp + fn > 0 THEN tp::float8 / (tp + fn) ELSE 0 END AS rec
      FROM cls
)
SELECT c AS class, tp, fp, fn, round(prec::numeric, 3) AS precision, round(rec::numeric, 3) AS recall,
       round((CASE WHEN prec + rec > 0 THEN 2 * prec * rec / (prec + rec) ELSE 0 END)::numeric, 3) AS f1
  FROM f ORDER BY c;
WITH f AS (
    SELECT c, count(*) FILTER (WHERE predicted = c AND sentiment = c)::float8 AS tp,
              count(*) FILTER (WHERE predicted = c)::float8 AS pp, count(*) FILTER (WHERE sentiment = c)::float8 AS ap
      FROM eval, unnest('{positive,negative,neutral}'::text[]) c GROUP BY c
)
SELECT (SELECT round(avg((predicted = sentiment)::int), 3) FROM eval) AS sentiment_accuracy,
       round(avg(CASE WHEN pp + ap > 0 THEN 2 * tp / (pp + ap) ELSE 0 END)::numeric, 3) AS sentiment_macro_f1,
       (SELECT round(avg((predicted = sentiment)::int), 3) FROM eval WHERE sentiment <> 'neutral') AS polar_accuracy
  FROM f;

\echo '== categories'
CREATE TEMP TABLE cats AS SELECT DISTINCT category AS c FROM cs.text_category_rules;
WITH f AS (
    SELECT c, count(*) FILTER (WHERE c = ANY (predicted_categories) AND c = ANY (categories)) AS tp,
              count(*) FILTER (WHERE c = ANY (predicted_categories) AND NOT c = ANY (categories)) AS fp,
              count(*) FILTER (WHERE NOT c = ANY (predicted_categories) AND c = ANY (categories)) AS fn
      FROM eval, cats GROUP BY c
)
SELECT c AS category, tp, fp, fn,
       round((CASE WHEN tp + fp > 0 THEN tp::float8 / (tp + fp) ELSE 0 END)::numeric, 3) AS precision,
       round((CASE WHEN tp + fn > 0 THEN tp::float8 / (tp + fn) ELSE 0 END)::numeric, 3) AS recall,
       round((CASE WHEN 2 * tp + fp + fn > 0 THEN 2.0 * tp / (2 * tp + fp + fn) ELSE 0 END)::numeric, 3) AS f1
  FROM f ORDER BY c;
WITH f AS (
    SELECT c, count(*) FILTER (WHERE c = ANY (predicted_categories) AND c = ANY (categories)) AS tp,
              count(*) FILTER (WHERE c = ANY (predicted_categories) <> (c = ANY (categories))) AS err,
              count(*) AS n
      FROM eval, cats GROUP BY c
)
SELECT round(avg(CASE WHEN 2 * tp + err > 0 THEN 2.0 * tp / (2 * tp + err) ELSE 0 END)::numeric, 3) AS category_macro_f1,
       round((sum(n - err)::float8 / sum(n))::numeric, 3) AS category_label_accuracy,
       (SELECT round(avg((predicted_categories = categories)::int), 3) FROM eval) AS category_exact_match
  FROM f;
