-- Downgrade and payment risks and expansion opportunities from deployed
-- models: the refresh stores them with SHAP factors, the shipped rules raise
-- alerts with the right playbook, a model that does not apply raises nothing,
-- and without an expansion model the upsell formula serves.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS cscopilot CASCADE;
CREATE EXTENSION cscopilot;
SET TIME ZONE 'UTC';
SET extra_float_digits = 0;
\set VERBOSITY terse

-- the shipped rules and playbooks
SELECT name, alert_type, condition, base_severity FROM cs.alert_rules
 WHERE name IN ('payment_risk_high', 'downgrade_risk_high', 'expansion_likely') ORDER BY name;
SELECT name, answers FROM cs.playbooks WHERE name IN ('billing_review', 'value_review', 'expansion_upsell') ORDER BY name;
SELECT s FROM unnest(cs.condition_scores()) s WHERE s ~ 'downgrade|payment_risk|expansion' ORDER BY s;

-- the shipped downgrade, payment and expansion models step aside: this test
-- deploys its own, and judges the fallback without any
SELECT name, kind, status FROM cs.models WHERE kind IN ('downgrade', 'payment', 'expansion') ORDER BY name;
DELETE FROM cs.models WHERE kind IN ('downgrade', 'payment', 'expansion');
SELECT cs.generate_demo_data(60, 200, 11) > 0 AS generated;
SELECT cs.refresh_all() > 0 AS refreshed;

-- without an expansion model: no expansion opportunity, the upsell formula serves
SELECT count(*) FILTER (WHERE kind = 'expansion') AS expansion,
       count(*) FILTER (WHERE kind = 'upsell') > 0 AS formula_upsells,
       bool_and(reasons ->> 'scored_by' = 'formula') FILTER (WHERE kind = 'upsell') AS by_formula
  FROM cs.opportunities;

-- Training rows from the demo history, with deterministic labels from the
-- features (the real labels of each outcome are another part's): every
-- sixth row is flipped, so that no feature alone is a leak.
CREATE TABLE tset AS
SELECT t.customer_id, t.as_of, t.features, cs.feature_map(t.features) AS fm,
       (hashtext(t.customer_id::text || t.as_of::text) % 6 = 0) AS flip
  FROM cs.build_training_set(ARRAY(SELECT (current_date - 200 + 30 * i)::date FROM generate_series(1, 5) i),
                             '60 days') t;
SELECT count(*) > 100 AS enough_rows FROM tset;
CREATE TABLE labelled AS
SELECT customer_id, as_of, features, flip,
       (coalesce((fm ->> 'seat_utilisation')::float8, 0) < 0.75) <> flip AS downgrade,
       (coalesce((fm ->> 'late_or_failed_invoices_90d')::float8, 0) >= 1
        OR coalesce((fm ->> 'days_overdue')::float8, 0) > 0) <> flip AS payment,
       (coalesce((fm ->> 'seat_utilisation')::float8, 0) >= 0.85) <> flip AS expansion,
       CASE WHEN coalesce((fm ->> 'seat_utilisation')::float8, 0) >= 0.85
            THEN 40 + 100 * coalesce((fm ->> 'seat_utilisation')::float8, 0) ELSE 0 END AS amount
  FROM tset;
SELECT count(*) FILTER (WHERE downgrade) > 10 AS downgrades, count(*) FILTER (WHERE payment) > 10 AS payments,
       count(*) FILTER (WHERE expansion) > 10 AS expansions
  FROM labelled;

SELECT cs.train_model('downgrade_test', 'downgrade', 'SELECT features, downgrade AS label, customer_id::text AS group_key FROM labelled',
                      '{"num_round": 20, "max_depth": 2, "seed": 3}') > 0 AS trained;
SELECT cs.train_model('payment_test', 'payment', 'SELECT features, payment AS label, customer_id::text AS group_key FROM labelled',
                      '{"num_round": 20, "max_depth": 2, "seed": 3}') > 0 AS trained;
SELECT cs.train_model('expansion_default', 'expansion', 'SELECT features, expansion AS label, customer_id::text AS group_key FROM labelled',
                      '{"num_round": 20, "max_depth": 2, "seed": 3}') > 0 AS trained;
SELECT cs.deploy_model('downgrade_test', 1);
SELECT cs.deploy_model('payment_test', 1);
SELECT cs.deploy_model('expansion_default', 1);
SELECT cs.champion('expansion');

-- the refresh stores downgrade and payment risks with SHAP factors, as churn
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT risk_type, model_version, count(*) AS assessments, bool_and(model_applicable) AS applicable,
       bool_and((risk_factors IS NOT NULL) = (risk_score >= 0.1)) AS explained_from_0_1,
       bool_and(risk_factors IS NULL OR jsonb_array_length(risk_factors) = 5) AS five_factors,
       count(*) FILTER (WHERE risk_score >= 0.5) > 0 AS some_high
  FROM cs.risk_assessments WHERE risk_type IN ('downgrade', 'payment')
 GROUP BY 1, 2 ORDER BY 1;
-- the stored risk is the model's calibrated prediction on the stored features
SELECT bool_and(a.risk_score = round(cs.predict_calibrated(CASE a.risk_type WHEN 'payment' THEN 'payment_test' ELSE 'downgrade_test' END,
                                                f.features)::numeric, 2)) AS matches_predict
  FROM cs.risk_assessments a JOIN cs.customer_features f ON f.customer_id = a.customer_id
 WHERE a.risk_type IN ('downgrade', 'payment');

-- expansion opportunities: the classifier's probability from
-- cscopilot.expansion_min_score, SHAP factors, and (no amount model) expected
-- MRR = probability x MRR x cscopilot.expansion_share; the upsell formula gives way
SELECT count(*) > 0 AS expansions,
       bool_and(o.score >= 0.3) AS from_min_score,
       bool_and(o.score = round(cs.predict_calibrated('expansion_default', f.features)::numeric, 3)) AS score_is_probability,
       bool_and(o.expected_mrr = round(o.score * c.mrr * current_setting('cscopilot.expansion_share')::numeric, 2)) AS fallback_amount,
       bool_and(o.reasons ->> 'amount_by' = 'probability x mrr x expansion_share') AS amount_by,
       bool_and(o.reasons ->> 'scored_by' = 'model expansion_default:v1') AS scored_by,
       bool_and(jsonb_array_length(o.reasons -> 'factors') = 5) AS five_factors
  FROM cs.opportunities o JOIN cs.customers c ON c.id = o.customer_id
  JOIN cs.customer_features f ON f.customer_id = o.customer_id
 WHERE o.kind = 'expansion';
-- customers below the threshold get none
SELECT count(*) AS missed
  FROM cs.customers c JOIN cs.customer_features f ON f.customer_id = c.id
 WHERE c.churned_at IS NULL AND cs.predict_calibrated('expansion_default', f.features) >= 0.3
   AND NOT EXISTS (SELECT 1 FROM cs.opportunities o WHERE o.customer_id = c.id AND o.kind = 'expansion');
SELECT count(*) AS formula_upsells FROM cs.opportunities WHERE kind = 'upsell';
-- the factors are the classifier's largest contributions, in order
SELECT bool_and(abs(c) >= abs(coalesce(next_c, 0))) AS ordered
  FROM (SELECT (x ->> 'contribution')::float8 AS c,
               lead((x ->> 'contribution')::float8) OVER (PARTITION BY o.id ORDER BY n) AS next_c
          FROM cs.opportunities o, jsonb_array_elements(o.reasons -> 'factors') WITH ORDINALITY AS t(x, n)
         WHERE o.kind = 'expansion') s;

-- the rules: one alert per customer whose risk (or expansion score) is 0.5 or
-- more, the answering playbook first, the model's factors among the reasons
SELECT r.name, count(a.*) > 0 AS alerts,
       count(a.*) = (SELECT count(*) FROM cs.customers c
                      WHERE c.churned_at IS NULL AND CASE r.name
                        WHEN 'payment_risk_high' THEN (SELECT x.risk_score FROM cs.risk_assessments x WHERE x.customer_id = c.id
                                                        AND x.risk_type = 'payment' ORDER BY x.created_at DESC LIMIT 1) >= 0.5
                        WHEN 'downgrade_risk_high' THEN (SELECT x.risk_score FROM cs.risk_assessments x WHERE x.customer_id = c.id
                                                          AND x.risk_type = 'downgrade' ORDER BY x.created_at DESC LIMIT 1) >= 0.5
                        ELSE (SELECT max(o.score) FROM cs.opportunities o WHERE o.customer_id = c.id AND o.kind = 'expansion'
                                AND o.status = 'open') >= 0.5 END) AS one_per_customer,
       bool_and(a.suggested_actions -> 0 ->> 'playbook' = CASE r.name WHEN 'payment_risk_high' THEN 'billing_review'
                                                                      WHEN 'downgrade_risk_high' THEN 'value_review'
                                                                      ELSE 'expansion_upsell' END) AS right_playbook,
       bool_and(a.suggested_actions -> 0 ->> 'message' NOT LIKE '%{%') AS message_filled,
       bool_and(a.title NOT LIKE '%n/a%') AS title_filled,
       bool_and(EXISTS (SELECT 1 FROM jsonb_array_elements(a.risk_factors) x
                         WHERE x ->> 'source' = CASE r.name WHEN 'payment_risk_high' THEN 'payment_model'
                                                            WHEN 'downgrade_risk_high' THEN 'downgrade_model'
                                                            ELSE 'opportunity' END)) AS model_factors
  FROM cs.alert_rules r LEFT JOIN cs.alerts a ON a.rule_id = r.id AND a.status = 'open'
 WHERE r.name IN ('payment_risk_high', 'downgrade_risk_high', 'expansion_likely')
 GROUP BY r.name ORDER BY r.name;
-- severity follows the risk
SELECT bool_and(a.severity = CASE WHEN (a.risk_factors -> 0 ->> 'value')::numeric >= 0.9 THEN 'critical'
                                  WHEN (a.risk_factors -> 0 ->> 'value')::numeric >= 0.7 THEN 'high' ELSE 'medium' END) AS graded
  FROM cs.alerts a JOIN cs.alert_rules r ON r.id = a.rule_id
 WHERE r.name IN ('payment_risk_high', 'downgrade_risk_high');
-- one rendered title
SELECT a.title ~ '^Payment risk 0\.[5-9][0-9]? at ' OR a.title ~ '^Payment risk 1\.00 at ' AS title
  FROM cs.alerts a JOIN cs.alert_rules r ON r.id = a.rule_id
 WHERE r.name = 'payment_risk_high' ORDER BY a.customer_id LIMIT 1;

-- an amount model: expected MRR is its prediction (never below 0)
SELECT cs.train_model('expansion_amount_default', 'expansion',
                      'SELECT features, amount AS label, customer_id::text AS group_key FROM labelled',
                      '{"objective": "reg:squarederror", "num_round": 20, "max_depth": 2, "seed": 3}') > 0 AS trained;
SELECT cs.deploy_model('expansion_amount_default', 1);
-- both are champions of kind expansion, one per role
SELECT name, objective, status FROM cs.models WHERE kind = 'expansion' ORDER BY name;
SELECT cs.champion('expansion');
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT count(*) > 0 AS expansions,
       bool_and(o.expected_mrr = round(greatest(cs.predict('expansion_amount_default', f.features), 0)::numeric, 2)) AS predicted_amount,
       bool_and(o.reasons ->> 'amount_by' = 'model expansion_amount_default:v1') AS amount_by
  FROM cs.opportunities o JOIN cs.customer_features f ON f.customer_id = o.customer_id
 WHERE o.kind = 'expansion';
-- a second classifier version replaces the first, not the amount model
SELECT cs.train_model('expansion_default', 'expansion', 'SELECT features, expansion AS label, customer_id::text AS group_key FROM labelled',
                      '{"num_round": 10, "max_depth": 2, "seed": 4}') > 0 AS trained;
SELECT cs.deploy_model('expansion_default', 2);
SELECT name, version, status FROM cs.models WHERE kind = 'expansion' ORDER BY name, version;
-- an expansion opportunity a CSM took on stays; no second one is raised beside it
UPDATE cs.opportunities SET status = 'in_progress'
 WHERE id = (SELECT id FROM cs.opportunities WHERE kind = 'expansion' ORDER BY customer_id LIMIT 1);
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT count(*) AS per_customer FROM cs.opportunities WHERE kind = 'expansion'
 GROUP BY customer_id ORDER BY count(*) DESC LIMIT 1;

------------------------------------------------------------------------------
-- Models that do not apply to this data raise nothing
------------------------------------------------------------------------------
SELECT cs.drop_demo_data() > 0 AS dropped;
-- customers with usage only: no invoices, no NPS
INSERT INTO cs.customers (id, external_id, name, mrr, seats_licensed, csm)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'u-' || i, 'Usage ' || i, 100 + i, 4, 'csm_01'
  FROM generate_series(1, 30) i;
INSERT INTO cs.usage_events (customer_id, user_id, event, feature, quantity, occurred_at)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'user' || (d % (1 + i % 6)), 'login',
       'f' || (d % (1 + i % 3)), 1 + (i * d) % 4, now() - make_interval(days => d, hours => i % 12)
  FROM generate_series(1, 30) i, generate_series(1, 60) d;
-- a payment model and an expansion model leaning on what is missing here
-- (invoices; NPS): both predict high when it is missing
CREATE TABLE gone_rows AS
SELECT g, ARRAY(SELECT CASE WHEN i = 17 THEN CASE WHEN g % 3 = 0 THEN 'NaN' ELSE (g % 40)::float4 END
                            WHEN i = 21 THEN CASE WHEN g % 3 = 0 THEN 'NaN' ELSE (g % 11)::float4 END
                            ELSE 1 END::float4
                  FROM generate_series(1, 36) i) AS features,
       ((g % 3 = 0 OR g % 40 > 25) <> (g % 7 = 0))::int AS label
  FROM generate_series(1, 600) g;
SELECT cs.train_model('payment_gone', 'payment', 'SELECT features, label FROM gone_rows', '{"num_round": 20, "max_depth": 2}') > 0 AS trained;
SELECT cs.train_model('expansion_gone', 'expansion', 'SELECT features, label FROM gone_rows', '{"num_round": 20, "max_depth": 2}') > 0 AS trained;
SELECT cs.deploy_model('payment_gone', 1);
SELECT cs.deploy_model('expansion_gone', 1);
SELECT cs.refresh_all() > 0 AS refreshed;
SELECT name, applicability ->> 'verdict' AS verdict FROM cs.models WHERE name IN ('payment_gone', 'expansion_gone') ORDER BY name;
-- payment scores are written, flagged, and high; no payment alert
SELECT count(*) AS scores, count(*) FILTER (WHERE NOT model_applicable) AS flagged,
       count(*) FILTER (WHERE risk_score >= 0.5) > 0 AS would_alert
  FROM cs.risk_assessments WHERE model_version = 'payment_gone:v1';
SELECT count(*) AS payment_alerts FROM cs.alerts a JOIN cs.alert_rules r ON r.id = a.rule_id
 WHERE r.name = 'payment_risk_high' AND a.status = 'open';
-- the expansion model would score high, but raises no opportunity and no
-- alert; the upsell formula serves again
SELECT count(*) FILTER (WHERE cs.predict('expansion_gone', f.features) >= 0.5) > 0 AS would_raise
  FROM cs.customer_features f;
SELECT count(*) FILTER (WHERE kind = 'expansion' AND status = 'open') AS expansions,
       count(*) FILTER (WHERE kind = 'upsell') > 0 AS formula_upsells
  FROM cs.opportunities;
SELECT count(*) AS expansion_alerts FROM cs.alerts a JOIN cs.alert_rules r ON r.id = a.rule_id
 WHERE r.name = 'expansion_likely' AND a.status = 'open';
-- a model alert says each does not apply
SELECT title FROM cs.system_alerts WHERE alert_type = 'model' AND status = 'open' ORDER BY title;

-- the new scores in conditions are checked like the others
INSERT INTO cs.alert_rules (name, alert_type, condition) VALUES ('bad', 'risk', '{"score": "downgrade_rsk", "op": ">", "value": 0.5}');
SELECT cs.fill_template('{payment_risk} {downgrade_risk} {expansion_mrr}', '{"payment_risk": "0.61"}');
