-- Install-once: subscription history from billing systems (Stripe and
-- Chargebee subscriptions, src/sql/82_billing.sql).
--
-- A billing loader keeps every change of a subscription as history: one row
-- of cs.subscriptions per product and version, closed (ended_at = the day of
-- the change) when its seats, price or status change and followed by a new
-- row, so MRR can be read at any date.  The rows of one source subscription
-- share its id (source_id) and differ by product and start.

DROP INDEX cs.subscriptions_source_key;
ALTER TABLE cs.subscriptions
    ADD CONSTRAINT subscriptions_source_key UNIQUE (customer_id, source, source_id, product, started_at);
COMMENT ON COLUMN cs.subscriptions.source_id IS 'The subscription''s id in the source; billing loaders keep one row per product and version of it, unique with the customer, product and start.';

-- The state of each billing subscription a loader has applied, so that an
-- older state received later (webhooks arrive out of order, lists are
-- reloaded) changes nothing.
CREATE TABLE cs.billing_subscriptions (
    customer_id          uuid NOT NULL REFERENCES cs.customers (id) ON DELETE CASCADE,
    source               text NOT NULL,
    source_id            text NOT NULL,
    status               text NOT NULL,
    current_period_start timestamptz,
    current_period_end   timestamptz,
    ends_on              date,
    observed_at          timestamptz NOT NULL,
    PRIMARY KEY (customer_id, source, source_id)
);
COMMENT ON TABLE cs.billing_subscriptions IS 'The latest state of each Stripe or Chargebee subscription applied to cs.subscriptions, with the time it describes; a state older than observed_at is ignored.';
COMMENT ON COLUMN cs.billing_subscriptions.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.billing_subscriptions.source IS 'Data source (cs.data_sources.name).';
COMMENT ON COLUMN cs.billing_subscriptions.source_id IS 'The subscription id in the billing system (sub_... for Stripe).';
COMMENT ON COLUMN cs.billing_subscriptions.status IS 'The status as the billing system words it (active, trialing, past_due, canceled, in_trial, non_renewing, cancelled, ...).';
COMMENT ON COLUMN cs.billing_subscriptions.current_period_start IS 'Start of the current billing period (Stripe current_period_start, Chargebee current_term_start).';
COMMENT ON COLUMN cs.billing_subscriptions.current_period_end IS 'End of the current billing period (Stripe current_period_end, Chargebee current_term_end).';
COMMENT ON COLUMN cs.billing_subscriptions.ends_on IS 'The day the subscription ends or ended (cancellation, scheduled or done), NULL while it renews.';
COMMENT ON COLUMN cs.billing_subscriptions.observed_at IS 'The time the applied state describes: the webhook event''s time, Chargebee updated_at, else the load time.';

