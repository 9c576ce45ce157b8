-- Install-once, after every function, view and trigger exists: the rows
-- CREATE EXTENSION ships for alerts.  Changing them for databases already
-- installed needs a migration in src/sql/updates/<released>--<next>.sql too.

------------------------------------------------------------------------------
-- Default rules
------------------------------------------------------------------------------

INSERT INTO cs.alert_rules (name, alert_type, condition, severity_metric, severity_thresholds, base_severity, title, cooldown, description) VALUES
('churn_risk_high', 'risk',
 '{"score": "churn_risk", "op": ">=", "value": 0.6}',
 '{"score": "churn_risk", "direction": "higher"}', '{"high": 0.75, "critical": 0.9}', 'medium',
 'Churn risk {churn_risk} at {name}', '7 days',
 'The churn model gives the customer a churn risk of 0.6 or more.'),
('usage_drop', 'risk',
 '{"any": [{"feature": "usage_trend_14d", "op": "<=", "value": -0.5}, {"feature": "usage_trend_30d", "op": "<=", "value": -0.5}]}',
 '{"feature": "usage_trend_30d", "direction": "lower"}', '{"high": -0.7, "critical": -0.9}', 'medium',
 'Usage dropped by half or more at {name}', '7 days',
 'Usage of the last 14 or 30 days is at most half of the period before.'),
('payment_problem', 'risk',
 '{"any": [{"feature": "days_overdue", "op": ">=", "value": 1}, {"feature": "late_or_failed_invoices_90d", "op": ">=", "value": 1}]}',
 '{"feature": "days_overdue", "direction": "higher"}', '{"medium": 15, "high": 30, "critical": 60}', 'low',
 'Payment overdue or failed at {name}', '7 days',
 'An invoice is past due, or one due in the last 90 days failed or was paid late.'),
('renewal_red_health', 'risk',
 '{"all": [{"feature": "days_to_renewal", "op": ">=", "value": 0}, {"feature": "days_to_renewal", "op": "<=", "value": 90}, {"band": "red"}]}',
 '{"feature": "days_to_renewal", "direction": "lower"}', '{"critical": 30}', 'high',
 'Renewal in {days_to_renewal} days with red health at {name}', '14 days',
 'The contract ends within 90 days and the health band is red.'),
('champion_left', 'risk',
 '{"feature": "champion_left_90d", "op": ">=", "value": 1}',
 NULL, '{}', 'high',
 'Champion left {name}', '30 days',
 'A champion contact left the customer in the last 90 days.'),
('support_escalation', 'risk',
 '{"any": [{"feature": "tickets_30d", "op": ">=", "value": 5}, {"feature": "open_high_priority_tickets", "op": ">=", "value": 2}, {"feature": "mean_csat_90d", "op": "<=", "value": 2.5}]}',
 '{"feature": "open_high_priority_tickets", "direction": "higher"}', '{"high": 3, "critical": 5}', 'medium',
 'Support escalation at {name}', '7 days',
 'A spike of tickets (5 or more in 30 days), 2 or more open high or urgent tickets, or a mean CSAT of 2.5 or less over 90 days.'),
('nps_detractor', 'risk',
 '{"feature": "last_nps", "op": "<=", "value": 6}',
 '{"feature": "last_nps", "direction": "lower"}', '{"medium": 4, "high": 2}', 'low',
 'NPS detractor at {name} (last score {last_nps})', '30 days',
 'The latest NPS answer is 6 or less.'),
('seat_upsell', 'opportunity',
 '{"feature": "seat_utilisation", "op": ">=", "value": 0.9}',
 '{"feature": "seat_utilisation", "direction": "higher"}', '{"medium": 1.0, "high": 1.2}', 'low',
 'Seat utilisation {seat_utilisation} at {name}: upsell', '30 days',
 'Active users fill 90% or more of the licensed seats.'),
('cancellation_intent', 'risk',
 '{"feature": "cancellation_mentions_90d", "op": ">=", "value": 1}',
 '{"feature": "cancellation_mentions_90d", "direction": "higher"}', '{"critical": 2}', 'high',
 'Cancellation intent at {name}', '14 days',
 'A support ticket or NPS comment of the last 90 days talks about cancelling (cs.ticket_category: cancellation_intent).');
