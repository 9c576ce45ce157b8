-- Install-once: tables of signals, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

------------------------------------------------------------------------------
-- Signal tables
------------------------------------------------------------------------------

CREATE TABLE cs.customers (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    external_id         varchar(255) NOT NULL,
    name                varchar(255) NOT NULL,
    industry            varchar(100),
    size                varchar(50),
    mrr                 numeric(10,2) CHECK (mrr >= 0),
    contract_start_date date,
    contract_end_date   date,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    segment             text,
    csm                 text,
    parent_id           uuid,
    seats_licensed      int CHECK (seats_licensed >= 0),
    churned_at          date,
    CONSTRAINT customers_contract_dates_check
        CHECK (contract_end_date IS NULL OR contract_start_date IS NULL
               OR contract_end_date >= contract_start_date),
    CONSTRAINT customers_not_own_parent_check CHECK (parent_id <> id),
    CONSTRAINT customers_name_not_blank_check CHECK (btrim(name) <> '')
);
-- One customer per external_id on a single node; a Citus cluster cannot keep
-- a unique index without the distribution column (id): cs.distribute() drops
-- it (cs._global_unique_indexes()) and the loaders, which resolve a customer
-- by external_id before they create one, keep the rule.
CREATE UNIQUE INDEX customers_external_id_global_key ON cs.customers (external_id);
CREATE INDEX customers_external_id_idx ON cs.customers (external_id);
CREATE INDEX customers_csm_idx ON cs.customers (csm);
-- A CSM's accounts, largest first (the account overview's page).
CREATE INDEX customers_csm_mrr_idx ON cs.customers (csm, mrr DESC);
CREATE INDEX customers_segment_idx ON cs.customers (segment);
CREATE INDEX customers_parent_idx ON cs.customers (parent_id) WHERE parent_id IS NOT NULL;
COMMENT ON TABLE cs.customers IS 'One row per customer account (the CRM account). Load by COPY or INSERT; other tables reference id.';
COMMENT ON COLUMN cs.customers.id IS 'Surrogate key, generated when not given.';
COMMENT ON COLUMN cs.customers.external_id IS 'The account id in the source system (CRM); one customer per external_id (a unique index on a single node, the loaders on a Citus cluster), used by loaders to resolve customers.';
COMMENT ON COLUMN cs.customers.name IS 'Account name, not blank.';
COMMENT ON COLUMN cs.customers.industry IS 'Industry of the account, free text.';
COMMENT ON COLUMN cs.customers.size IS 'Company size band as the CRM states it (for example 11-50).';
COMMENT ON COLUMN cs.customers.mrr IS 'Current monthly recurring revenue, non-negative.';
COMMENT ON COLUMN cs.customers.contract_start_date IS 'Start of the current contract.';
COMMENT ON COLUMN cs.customers.contract_end_date IS 'End (renewal date) of the current contract; not before the start.';
COMMENT ON COLUMN cs.customers.created_at IS 'When the row was created (the load time): not when the customer started; features and training read the start from cs.contract_terms, contract_start_date, cs.subscriptions and first_seen_at.';
COMMENT ON COLUMN cs.customers.updated_at IS 'When the row last changed; maintained by a trigger.';
COMMENT ON COLUMN cs.customers.segment IS 'Segment in the user''s own words (any text, for example smb or prosumer); selects the health profile of that segment when there is one, else the default profile.';
COMMENT ON COLUMN cs.customers.csm IS 'Role name of the customer success manager who owns the account.';
COMMENT ON COLUMN cs.customers.parent_id IS 'Parent account for subsidiaries, or NULL; an existing customer, checked by the trigger customers_parent_exists (no self-referencing foreign key, which Citus cannot distribute).';
COMMENT ON COLUMN cs.customers.seats_licensed IS 'Seats in the licence, non-negative.';
COMMENT ON COLUMN cs.customers.churned_at IS 'Date the customer churned, when known: the ground truth models are trained and judged on.';

CREATE TABLE cs.usage_events (
    customer_id uuid NOT NULL,
    user_id     text,
    event       text NOT NULL,
    feature     text,
    quantity    float8 NOT NULL DEFAULT 1 CHECK (quantity >= 0 AND quantity < 'Infinity'),
    occurred_at timestamptz NOT NULL
) PARTITION BY RANGE (occurred_at);
CREATE TABLE cs.usage_events_default PARTITION OF cs.usage_events DEFAULT;
CREATE INDEX usage_events_customer_time_idx ON cs.usage_events (customer_id, occurred_at);
COMMENT ON TABLE cs.usage_events IS 'Product usage events, range-partitioned by month on occurred_at; a default partition takes any date. Customers are checked per statement by a trigger (no per-row foreign key, for load speed).';
COMMENT ON COLUMN cs.usage_events.customer_id IS 'The customer (cs.customers.id); an unknown id rejects the whole statement.';
COMMENT ON COLUMN cs.usage_events.user_id IS 'The end user in the product analytics source.';
COMMENT ON COLUMN cs.usage_events.event IS 'Event name, for example login or report_created.';
COMMENT ON COLUMN cs.usage_events.feature IS 'Product feature the event belongs to.';
COMMENT ON COLUMN cs.usage_events.quantity IS 'How many times the event happened in this row (aggregated exports), non-negative and finite.';
COMMENT ON COLUMN cs.usage_events.occurred_at IS 'When the event happened; selects the monthly partition.';

CREATE TABLE cs.support_tickets (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    external_id text,
    opened_at   timestamptz NOT NULL,
    closed_at   timestamptz,
    priority    text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('new', 'open', 'pending', 'on_hold', 'solved', 'closed')),
    csat        smallint CHECK (csat BETWEEN 1 AND 5),
    subject     text,
    body        text,
    CONSTRAINT support_tickets_closed_after_opened_check CHECK (closed_at IS NULL OR closed_at >= opened_at),
    -- Scoped by the customer (Citus: every key holds the distribution column);
    -- external_id first, so that it finds a row by external_id alone as well.
    CONSTRAINT support_tickets_external_id_key UNIQUE (external_id, customer_id),
    PRIMARY KEY (customer_id, id)
);
-- One row per external_id across customers on a single node (dropped by
-- cs.distribute() on Citus, where the loaders keep it: README, "Keys").
CREATE UNIQUE INDEX support_tickets_external_id_global_key ON cs.support_tickets (external_id);
CREATE INDEX support_tickets_customer_time_idx ON cs.support_tickets (customer_id, opened_at);
COMMENT ON TABLE cs.support_tickets IS 'Support tickets (Zendesk, Intercom, ...).';
COMMENT ON COLUMN cs.support_tickets.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.support_tickets.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.support_tickets.external_id IS 'Ticket id in the source system; one row per ticket id when given (unique with customer_id, and across customers on a single node).';
COMMENT ON COLUMN cs.support_tickets.opened_at IS 'When the ticket was opened.';
COMMENT ON COLUMN cs.support_tickets.closed_at IS 'When it was closed, not before opened_at; NULL while open.';
COMMENT ON COLUMN cs.support_tickets.priority IS 'low, normal, high or urgent.';
COMMENT ON COLUMN cs.support_tickets.status IS 'new, open, pending, on_hold, solved or closed.';
COMMENT ON COLUMN cs.support_tickets.csat IS 'Customer satisfaction rating 1-5, when given.';
COMMENT ON COLUMN cs.support_tickets.subject IS 'Ticket subject.';
COMMENT ON COLUMN cs.support_tickets.body IS 'First message of the ticket.';

CREATE TABLE cs.invoices (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    external_id text,
    amount      numeric(12,2) NOT NULL CHECK (amount >= 0),
    issued_at   date NOT NULL,
    due_date    date NOT NULL,
    paid_at     date,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('draft', 'open', 'paid', 'failed', 'void', 'uncollectible')),
    CONSTRAINT invoices_due_after_issue_check CHECK (due_date >= issued_at),
    CONSTRAINT invoices_paid_status_check CHECK (paid_at IS NULL OR status = 'paid'),
    -- Scoped by the customer (Citus: every key holds the distribution column);
    -- external_id first, so that it finds a row by external_id alone as well.
    CONSTRAINT invoices_external_id_key UNIQUE (external_id, customer_id),
    PRIMARY KEY (customer_id, id)
);
-- One row per external_id across customers on a single node (dropped by
-- cs.distribute() on Citus, where the loaders keep it: README, "Keys").
CREATE UNIQUE INDEX invoices_external_id_global_key ON cs.invoices (external_id);
CREATE INDEX invoices_customer_time_idx ON cs.invoices (customer_id, issued_at);
COMMENT ON TABLE cs.invoices IS 'Invoices and their payment (Stripe, Chargebee, ...).';
COMMENT ON COLUMN cs.invoices.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.invoices.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.invoices.external_id IS 'Invoice id in the billing system; one row per invoice id when given (unique with customer_id, and across customers on a single node).';
COMMENT ON COLUMN cs.invoices.amount IS 'Invoice total, non-negative.';
COMMENT ON COLUMN cs.invoices.issued_at IS 'Issue date.';
COMMENT ON COLUMN cs.invoices.due_date IS 'Due date, not before the issue date.';
COMMENT ON COLUMN cs.invoices.paid_at IS 'Payment date; only for status paid. Paid after due_date means late.';
COMMENT ON COLUMN cs.invoices.status IS 'draft, open, paid, failed, void or uncollectible.';

CREATE TABLE cs.engagements (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    kind        text NOT NULL CHECK (kind IN ('meeting', 'call', 'email', 'qbr', 'training', 'onsite', 'note', 'other')),
    occurred_at timestamptz NOT NULL,
    notes       text,
    logged_by   text,
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX engagements_customer_time_idx ON cs.engagements (customer_id, occurred_at);
COMMENT ON TABLE cs.engagements IS 'CSM touches: meetings, calls, emails, QBRs, trainings.';
COMMENT ON COLUMN cs.engagements.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.engagements.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.engagements.kind IS 'meeting, call, email, qbr, training, onsite, note (an internal note of the CSM: no touch, counted in no feature) or other.';
COMMENT ON COLUMN cs.engagements.occurred_at IS 'When it happened.';
COMMENT ON COLUMN cs.engagements.notes IS 'Free-text notes.';
COMMENT ON COLUMN cs.engagements.logged_by IS 'Role of the CSM who logged it with cs.log_engagement; NULL for loaded rows.';

CREATE TABLE cs.nps_responses (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    customer_id  uuid NOT NULL REFERENCES cs.customers (id),
    score        smallint NOT NULL CHECK (score BETWEEN 0 AND 10),
    comment      text,
    responded_at timestamptz NOT NULL,
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX nps_responses_customer_time_idx ON cs.nps_responses (customer_id, responded_at);
COMMENT ON TABLE cs.nps_responses IS 'Net promoter score survey answers.';
COMMENT ON COLUMN cs.nps_responses.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.nps_responses.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.nps_responses.score IS 'NPS answer 0-10.';
COMMENT ON COLUMN cs.nps_responses.comment IS 'Free-text comment.';
COMMENT ON COLUMN cs.nps_responses.responded_at IS 'When the answer was given.';

CREATE TABLE cs.contacts (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    name        text NOT NULL,
    email       text CHECK (email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    role        text,
    is_champion boolean NOT NULL DEFAULT false,
    left_at     timestamptz,
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX contacts_customer_idx ON cs.contacts (customer_id);
COMMENT ON TABLE cs.contacts IS 'People at the customer; champions matter for risk.';
COMMENT ON COLUMN cs.contacts.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.contacts.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.contacts.name IS 'Full name.';
COMMENT ON COLUMN cs.contacts.email IS 'E-mail address (one @, no spaces).';
COMMENT ON COLUMN cs.contacts.role IS 'Job role, for example VP Operations.';
COMMENT ON COLUMN cs.contacts.is_champion IS 'True for the internal champion of the product.';
COMMENT ON COLUMN cs.contacts.left_at IS 'When the person left the customer, or NULL.';

CREATE TABLE cs.subscriptions (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    customer_id uuid NOT NULL REFERENCES cs.customers (id),
    product     text NOT NULL,
    seats       int NOT NULL DEFAULT 0 CHECK (seats >= 0),
    mrr         numeric(10,2) NOT NULL DEFAULT 0 CHECK (mrr >= 0),
    started_at  date NOT NULL,
    ended_at    date,
    CONSTRAINT subscriptions_dates_check CHECK (ended_at IS NULL OR ended_at >= started_at),
    PRIMARY KEY (customer_id, id)
);
CREATE INDEX subscriptions_customer_idx ON cs.subscriptions (customer_id, started_at);
COMMENT ON TABLE cs.subscriptions IS 'Products a customer subscribes to, with seats and MRR over time; an expansion is a new or larger subscription.';
COMMENT ON COLUMN cs.subscriptions.id IS 'Surrogate key.';
COMMENT ON COLUMN cs.subscriptions.customer_id IS 'The customer (cs.customers.id).';
COMMENT ON COLUMN cs.subscriptions.product IS 'Product or plan name.';
COMMENT ON COLUMN cs.subscriptions.seats IS 'Seats in this subscription, non-negative.';
COMMENT ON COLUMN cs.subscriptions.mrr IS 'Monthly recurring revenue of this subscription, non-negative.';
COMMENT ON COLUMN cs.subscriptions.started_at IS 'Start date.';
COMMENT ON COLUMN cs.subscriptions.ended_at IS 'End date, not before the start; NULL while active.';
