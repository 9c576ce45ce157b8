-- Contract terms: the history of a customer's terms, one row per term, so that
-- point-in-time features read the renewal date and the start of the customer
-- as they were known then, never extrapolated from today's contract.
CREATE TABLE cs.contract_terms (
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    term_start  date NOT NULL,
    term_end    date NOT NULL,
    mrr         numeric(12,2) CHECK (mrr >= 0),
    seats       int CHECK (seats >= 0),
    source      text NOT NULL DEFAULT 'manual',
    source_id   text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, term_start),
    CONSTRAINT contract_terms_dates_check CHECK (term_end > term_start)
);
COMMENT ON TABLE cs.contract_terms IS
    'History of contract terms, one row per term (monthly, annual or any length): renewal dates and the start of the customer as known at any date. Features read the term in force at as_of; a term that ends without a successor is a contract that was not renewed.';
COMMENT ON COLUMN cs.contract_terms.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.contract_terms.term_start IS 'First day of the term.';
COMMENT ON COLUMN cs.contract_terms.term_end IS 'Renewal date: the day after the last day of the term, after term_start.';
COMMENT ON COLUMN cs.contract_terms.mrr IS 'Monthly recurring revenue of the term, when known; non-negative.';
COMMENT ON COLUMN cs.contract_terms.seats IS 'Seats of the term, when known; non-negative.';
COMMENT ON COLUMN cs.contract_terms.source IS 'Where the row came from: manual, a loader''s source name, or demo.';
COMMENT ON COLUMN cs.contract_terms.source_id IS 'The term''s id in its source, when it has one.';
COMMENT ON COLUMN cs.contract_terms.created_at IS 'When the row was written.';
