-- Install-once: cs.alert_feedback keyed by customer (issue 19), after
-- 93_csm.sql gave it customer_id.  Every feedback row is about an alert of a
-- customer (feedback on model and data alerts is in cs.system_alert_feedback),
-- so the key and the foreign key hold the distribution column: on Citus the
-- table is distributed by customer, colocated with its alerts.  Included by
-- the upgrade script once the existing rows have their customer.
ALTER TABLE cs.alert_feedback
    ALTER COLUMN customer_id SET NOT NULL,
    DROP CONSTRAINT alert_feedback_pkey,
    ADD CONSTRAINT alert_feedback_pkey PRIMARY KEY (customer_id, id),
    ADD CONSTRAINT alert_feedback_alert_id_fkey FOREIGN KEY (customer_id, alert_id)
        REFERENCES cs.alerts (customer_id, id) ON DELETE CASCADE;
CREATE INDEX alert_feedback_id_idx ON cs.alert_feedback (id);
COMMENT ON COLUMN cs.alert_feedback.customer_id IS
    'The alert''s customer (taken from the alert when not given; a customer that is not the alert''s is refused by the foreign key): row-level security and the csm follow it.';
