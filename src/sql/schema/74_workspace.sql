-- Install-once: indexes of the CSM workspace (src/sql/74_workspace.sql).
-- CREATE EXTENSION runs this once; a change here needs the same change in
-- src/sql/updates/<released>--<next>.sql.
--
-- cs.account_timeline reads every dated fact of one customer since a time:
-- each branch is a range scan of a (customer_id, time) index.  The tables'
-- own indexes cover the times rows are loaded by (opened_at, issued_at,
-- occurred_at, taken_at, started_at, ...); these cover the other times a
-- timeline shows, partial where most rows have none.

CREATE INDEX support_tickets_customer_closed_idx ON cs.support_tickets (customer_id, closed_at)
    WHERE closed_at IS NOT NULL;
CREATE INDEX invoices_customer_paid_idx ON cs.invoices (customer_id, paid_at)
    WHERE paid_at IS NOT NULL;
CREATE INDEX invoices_customer_failed_idx ON cs.invoices (customer_id, due_date)
    WHERE status IN ('failed', 'uncollectible');
CREATE INDEX subscriptions_customer_ended_idx ON cs.subscriptions (customer_id, ended_at)
    WHERE ended_at IS NOT NULL;
CREATE INDEX alerts_customer_time_idx ON cs.alerts (customer_id, created_at);
CREATE INDEX actions_customer_outcome_idx ON cs.actions (customer_id, outcome_at)
    WHERE outcome_at IS NOT NULL;
CREATE INDEX opportunities_customer_closed_idx ON cs.opportunities (customer_id, closed_at)
    WHERE closed_at IS NOT NULL;
