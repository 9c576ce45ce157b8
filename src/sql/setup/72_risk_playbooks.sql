-- Install-once, after every function, view and trigger exists: the alert
-- rules and playbooks CREATE EXTENSION ships for the downgrade and payment
-- risks and the expansion opportunity (README "Downgrade, payment and
-- expansion").  The upgrade script includes this file too.  The thresholds
-- are the rules' own values: edit the rows to change them.

INSERT INTO cs.alert_rules (name, alert_type, condition, severity_metric, severity_thresholds, base_severity, title, cooldown, description) VALUES
('payment_risk_high', 'risk',
 '{"score": "payment_risk", "op": ">=", "value": 0.5}',
 '{"score": "payment_risk", "direction": "higher"}', '{"high": 0.7, "critical": 0.9}', 'medium',
 'Payment risk {payment_risk} at {name}', '14 days',
 'The payment model gives the customer a risk of 0.5 or more that an invoice fails or goes overdue within the horizon.'),
('downgrade_risk_high', 'risk',
 '{"score": "downgrade_risk", "op": ">=", "value": 0.5}',
 '{"score": "downgrade_risk", "direction": "higher"}', '{"high": 0.7, "critical": 0.9}', 'medium',
 'Downgrade risk {downgrade_risk} at {name}', '14 days',
 'The downgrade model gives the customer a risk of 0.5 or more of cutting its MRR or seats within the horizon.'),
('expansion_likely', 'opportunity',
 '{"score": "expansion_score", "op": ">=", "value": 0.5}',
 '{"score": "expansion_score", "direction": "higher"}', '{"medium": 0.7, "high": 0.85}', 'low',
 'Expansion likely at {name}: +{expansion_mrr} MRR expected', '30 days',
 'The expansion model gives the customer a probability of 0.5 or more of growing its MRR within the horizon.');

INSERT INTO cs.playbooks (name, action, answers, template, outcome_window, description) VALUES
('billing_review', 'Review billing details before the next invoice',
 '{payment_risk}',
 'Hello {name} team, ahead of your next invoice I would like to check with you that the payment method, billing contact and purchase order details on your account are up to date, so nothing gets interrupted. — {csm}',
 '30 days', 'Prevent a failed or late payment the payment model sees coming: confirm the payment method, billing contact and PO with finance before the invoice is due.'),
('value_review', 'Run a value review with the account',
 '{downgrade_risk}',
 'Hello {name} team, I would like to review with you what your team gets from the product today, which seats and features are in use, and what would make the next months more valuable. Do you have 45 minutes? — {csm}',
 '45 days', 'Meet a likely downgrade with a review of the value delivered and a plan for the unused seats and features, before the customer cuts its plan.'),
('expansion_upsell', 'Propose an upgrade to the account',
 '{expansion,expansion_score,expansion_mrr}',
 'Hello {name} team, your use of the product has grown a lot lately. I would like to show you the plan that fits where your team is heading, with room for more users and features. — {csm}',
 '45 days', 'Turn an expansion the expansion model sees coming into an upgrade proposal while the momentum lasts.');
