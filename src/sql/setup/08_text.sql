-- Install-once, after every function, view and trigger exists: the rows
-- CREATE EXTENSION ships for text.  Changing them for databases already
-- installed needs a migration in src/sql/updates/<released>--<next>.sql too.

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

-- Statistics for the planner from the start: without them it scans these
-- small tables through their indexes, several times slower per text.
ANALYZE cs.text_category_rules, cs.text_category_filters;
