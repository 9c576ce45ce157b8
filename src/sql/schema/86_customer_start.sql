-- Install-once: when a customer started, from its real history (issue 18).
-- cs.customers.created_at is when the row was loaded; the start is the
-- earliest of the first contract term (cs.contract_terms), the current
-- contract's start, the first subscription and the first recorded activity,
-- which the load triggers keep here (src/sql/01_loading.sql, cs._mark_dirty).
-- Added after the columns of the earlier schema files, as an upgrade adds it.

ALTER TABLE cs.customers ADD COLUMN first_seen_at timestamptz;
COMMENT ON COLUMN cs.customers.first_seen_at IS 'Earliest time stamped on any usage event, ticket, invoice, engagement or NPS response loaded for the customer; maintained by the load triggers (never moved later by deletes).';
