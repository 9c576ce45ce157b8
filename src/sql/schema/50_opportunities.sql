-- Install-once: tables of opportunities, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.opportunities (
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    customer_id  uuid NOT NULL REFERENCES cs.customers (id),
    kind         text NOT NULL CHECK (kind IN ('upsell', 'cross_sell', 'expansion', 'adoption')),
    score        numeric(4,3) NOT NULL CHECK (score BETWEEN 0 AND 1),
    expected_mrr numeric(10,2) CHECK (expected_mrr >= 0),
    product      text,
    reasons      jsonb,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'won', 'lost', 'dismissed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL DEFAULT 'csm' CHECK (source IN ('system', 'csm')),
    won_mrr      numeric(10,2) CHECK (won_mrr >= 0),
    closed_at    timestamptz,
    updated_at   timestamptz,
    updated_by   text,
    CONSTRAINT opportunities_won_mrr_status_check CHECK (won_mrr IS NULL OR status = 'won'),
    PRIMARY KEY (customer_id, id)
);
-- Functions address an opportunity by its id alone.
CREATE INDEX opportunities_id_idx ON cs.opportunities (id);
CREATE INDEX opportunities_customer_idx ON cs.opportunities (customer_id, kind);
COMMENT ON TABLE cs.opportunities IS 'Upsell, cross-sell, expansion and adoption opportunities.';
COMMENT ON COLUMN cs.opportunities.kind IS 'upsell, cross_sell, expansion or adoption.';
COMMENT ON COLUMN cs.opportunities.score IS 'Propensity 0-1.';
COMMENT ON COLUMN cs.opportunities.expected_mrr IS 'Expected MRR uplift.';
COMMENT ON COLUMN cs.opportunities.product IS 'Product to offer, for cross-sell.';
COMMENT ON COLUMN cs.opportunities.reasons IS 'Why the opportunity was raised.';
COMMENT ON COLUMN cs.opportunities.status IS 'open, in_progress, won, lost or dismissed.';
COMMENT ON COLUMN cs.opportunities.won_mrr IS 'MRR actually won, for status won (cs.move_opportunity requires it); NULL otherwise.';
COMMENT ON COLUMN cs.opportunities.closed_at IS 'When the opportunity was won, lost or dismissed.';
COMMENT ON COLUMN cs.opportunities.updated_at IS 'When cs.move_opportunity last moved it; NULL if never moved.';
COMMENT ON COLUMN cs.opportunities.updated_by IS 'Role that last moved it with cs.move_opportunity.';
COMMENT ON COLUMN cs.opportunities.source IS 'system for opportunities cs.refresh_opportunities generates (replaced on refresh while open), csm for ones entered by hand.';

-- Cross-sell statistics over every customer's active subscriptions: taken by
-- full refreshes (and whenever missing), reused by partial ones, which would
-- otherwise rescan every subscription to score a handful of customers.
CREATE TABLE cs.cross_sell_stats (
    product_a   text NOT NULL,
    product_b   text NOT NULL,
    n_ab        float8 NOT NULL,
    confidence  float8 NOT NULL,
    lift        float8 NOT NULL,
    n_b         float8 NOT NULL,
    mean_mrr_b  numeric,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_a, product_b)
);
COMMENT ON TABLE cs.cross_sell_stats IS 'Product pairs with lift(B|A) > 0 over active subscriptions (at least 2 customers with both, P(B|A) >= 0.25), as of the last full refresh of opportunities; partial refreshes rank cross-sell candidates with them.';
COMMENT ON COLUMN cs.cross_sell_stats.product_a IS 'A product the customer has.';
COMMENT ON COLUMN cs.cross_sell_stats.product_b IS 'The product to offer.';
COMMENT ON COLUMN cs.cross_sell_stats.n_ab IS 'Customers with both products active.';
COMMENT ON COLUMN cs.cross_sell_stats.confidence IS 'P(B|A).';
COMMENT ON COLUMN cs.cross_sell_stats.lift IS 'P(B|A) / P(B).';
COMMENT ON COLUMN cs.cross_sell_stats.n_b IS 'Customers with B active.';
COMMENT ON COLUMN cs.cross_sell_stats.mean_mrr_b IS 'Mean MRR of the active subscriptions of B.';
COMMENT ON COLUMN cs.cross_sell_stats.computed_at IS 'When the statistics were taken.';

-- The adoption catalogue (the largest feature breadth in the feature store),
-- taken with the cross-sell statistics.
CREATE TABLE cs.adoption_stats (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    catalogue   float8,
    computed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cs.adoption_stats IS 'One row: the adoption catalogue as of the last full refresh of opportunities; partial refreshes score adoption against it.';
COMMENT ON COLUMN cs.adoption_stats.singleton IS 'Always true: the table holds one row.';
COMMENT ON COLUMN cs.adoption_stats.catalogue IS 'The most product features (feature_breadth_30d) any customer used in 30 days; NULL without any.';
COMMENT ON COLUMN cs.adoption_stats.computed_at IS 'When it was taken.';
