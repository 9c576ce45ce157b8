-- Install-once: tables of loading, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

------------------------------------------------------------------------------
-- Deleting a customer.  Signal and result rows reference the customer without
-- cascading, so a plain DELETE of a customer that has any history fails with a
-- foreign-key violation (usage events are checked by a statement trigger).
-- cs.purge_customer() removes a customer and every row about it on purpose
-- (for example an erasure request) and records that it did in
-- cs.customer_purges.
------------------------------------------------------------------------------

CREATE TABLE cs.customer_purges (
    customer_id  uuid NOT NULL,
    external_id  text NOT NULL,
    purged_by    text NOT NULL DEFAULT current_user,
    purged_at    timestamptz NOT NULL DEFAULT now(),
    rows_deleted jsonb NOT NULL,
    reason       text
);
COMMENT ON TABLE cs.customer_purges IS 'Audit of customers removed with cs.purge_customer: who, when, why and how many rows per table.';

-- A year back and three months ahead at install time; the worker keeps creating future ones.
SELECT cs.ensure_usage_partitions((date_trunc('month', now()) - interval '12 months')::date,
                                  (date_trunc('month', now()) + interval '3 months')::date);

------------------------------------------------------------------------------
-- Dirty queue: customers whose signals changed since they were last scored
------------------------------------------------------------------------------

CREATE TABLE cs.dirty_customers (
    customer_id uuid PRIMARY KEY REFERENCES cs.customers (id) ON DELETE CASCADE,
    marked_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts    int NOT NULL DEFAULT 0,
    last_error  text,
    parked      boolean NOT NULL DEFAULT false,
    due_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    covered_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    generation  bigint NOT NULL DEFAULT 0
);
CREATE INDEX dirty_customers_due_idx ON cs.dirty_customers (due_at, customer_id) WHERE NOT parked;
COMMENT ON TABLE cs.dirty_customers IS 'Customers whose signals changed since they were last scored; filled by load triggers, drained by cs.refresh().  A refresh removes a mark only when its features, taken as of a time at or after covered_at from a snapshot that holds every load that set the mark, count all of them.';
COMMENT ON COLUMN cs.dirty_customers.marked_at IS 'Last time a load marked the customer.';
COMMENT ON COLUMN cs.dirty_customers.attempts IS 'Failed refresh attempts.';
COMMENT ON COLUMN cs.dirty_customers.last_error IS 'Error of the last failed refresh.';
COMMENT ON COLUMN cs.dirty_customers.parked IS 'True when the customer failed too often and is no longer retried automatically.';
COMMENT ON COLUMN cs.dirty_customers.due_at IS 'When the next refresh is due: the load''s time, or for rows stamped ahead of the server''s clock the time of the earliest of them.  cs.refresh() and the worker take marks that are due.';
COMMENT ON COLUMN cs.dirty_customers.generation IS 'Counts the loads that marked the customer again: a refresh removes the mark only if its generation is the one the refresh read.';
COMMENT ON COLUMN cs.dirty_customers.covered_at IS 'The latest time stamped on the rows that set the mark (at least the time of the load): a refresh as of this time or later counts every one of them.';
