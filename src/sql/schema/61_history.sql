-- Install-once: the monthly partitions of the history tables
-- (cs.customer_health_scores, cs.risk_assessments, cs.model_shadow_scores,
-- cs.alert_events; each created with its default partition in the schema file
-- of its concern), a year back and three months ahead at install time, as for
-- cs.usage_events.  The worker's partitions job keeps creating future months;
-- cs.apply_retention (src/sql/61_history.sql) drops the old ones.
SELECT cs.ensure_history_partitions((date_trunc('month', now()) - interval '12 months')::date,
                                    (date_trunc('month', now()) + interval '3 months')::date);
