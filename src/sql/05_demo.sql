-- Demo data: a deterministic, realistic synthetic dataset (src/demo.c) and the
-- hidden state it was drawn from, to judge scores, models and alerts against.

------------------------------------------------------------------------------
-- Generators: one set-returning function per table, all deterministic
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs._demo_customers(customers int, days int, seed int, end_date date)
RETURNS TABLE (id uuid, external_id text, name text, industry text, size text, mrr numeric,
               contract_start_date date, contract_end_date date, created_at timestamptz,
               updated_at timestamptz, segment text, csm text, parent_id uuid, seats_licensed int,
               churned_at date)
AS 'MODULE_PATHNAME', 'cs_demo_customers'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_customers(int, int, int, date) IS
    'Demo rows for cs.customers, as cs.generate_demo_data() inserts them; internal.';

CREATE OR REPLACE FUNCTION cs._demo_ground_truth(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, archetype text, churned_at date, expanded_at date, expansion_mrr numeric,
               health_start float8, health_end float8)
AS 'MODULE_PATHNAME', 'cs_demo_ground_truth'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_ground_truth(int, int, int, date) IS
    'Demo rows for cs.demo_ground_truth, as cs.generate_demo_data() inserts them; internal.';

CREATE OR REPLACE FUNCTION cs._demo_subscriptions(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, product text, seats int, mrr numeric, started_at date, ended_at date)
AS 'MODULE_PATHNAME', 'cs_demo_subscriptions'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_subscriptions(int, int, int, date) IS
    'Demo rows for cs.subscriptions, as cs.generate_demo_data() inserts them; internal.';

CREATE OR REPLACE FUNCTION cs._demo_contacts(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, name text, email text, role text, is_champion boolean, left_at timestamptz)
AS 'MODULE_PATHNAME', 'cs_demo_contacts'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_contacts(int, int, int, date) IS
    'Demo rows for cs.contacts, as cs.generate_demo_data() inserts them; internal.';

CREATE OR REPLACE FUNCTION cs._demo_invoices(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, external_id text, amount numeric, issued_at date, due_date date,
               paid_at date, status text)
AS 'MODULE_PATHNAME', 'cs_demo_invoices'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_invoices(int, int, int, date) IS
    'Demo rows for cs.invoices, as cs.generate_demo_data() inserts them; internal.';

CREATE OR REPLACE FUNCTION cs._demo_tickets(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, external_id text, opened_at timestamptz, closed_at timestamptz,
               priority text, status text, csat smallint, subject text, body text)
AS 'MODULE_PATHNAME', 'cs_demo_tickets'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_tickets(int, int, int, date) IS
    'Demo rows for cs.support_tickets, as cs.generate_demo_data() inserts them; internal.';

CREATE OR REPLACE FUNCTION cs._demo_engagements(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, kind text, occurred_at timestamptz, notes text)
AS 'MODULE_PATHNAME', 'cs_demo_engagements'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_engagements(int, int, int, date) IS
    'Demo rows for cs.engagements, as cs.generate_demo_data() inserts them; internal.';

CREATE OR REPLACE FUNCTION cs._demo_nps(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, score smallint, comment text, responded_at timestamptz)
AS 'MODULE_PATHNAME', 'cs_demo_nps'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_nps(int, int, int, date) IS
    'Demo rows for cs.nps_responses, as cs.generate_demo_data() inserts them; internal.';

CREATE OR REPLACE FUNCTION cs._demo_usage(customers int, days int, seed int, end_date date,
                               from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (customer_id uuid, user_id text, event text, feature text, quantity float8,
               occurred_at timestamptz)
AS 'MODULE_PATHNAME', 'cs_demo_usage'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_usage(int, int, int, date, date, date) IS
    'Demo rows for cs.usage_events (one per active user-day) of the days between from_date and to_date (NULL: the whole window), month by month and in customer uuid order; internal.';

-- The consumer profile (profile => 'consumer'): accounts, ground truth, monthly terms, events.
CREATE OR REPLACE FUNCTION cs._demo_consumer_customers(customers int, days int, seed int, end_date date)
RETURNS TABLE (id uuid, external_id text, name text, mrr numeric, contract_start_date date,
               contract_end_date date, churned_at date)
AS 'MODULE_PATHNAME', 'cs_demo_consumer_customers'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_consumer_customers(int, int, int, date) IS
    'Demo rows for cs.customers of the consumer profile, as cs.generate_demo_data(profile => ''consumer'') inserts them (created_at left to the load time); internal.';

CREATE OR REPLACE FUNCTION cs._demo_consumer_ground_truth(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, archetype text, churned_at date, expanded_at date, expansion_mrr numeric,
               health_start float8, health_end float8)
AS 'MODULE_PATHNAME', 'cs_demo_consumer_ground_truth'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_consumer_ground_truth(int, int, int, date) IS
    'Demo rows for cs.demo_ground_truth of the consumer profile (health = hidden engagement); internal.';

CREATE OR REPLACE FUNCTION cs._demo_consumer_terms(customers int, days int, seed int, end_date date)
RETURNS TABLE (customer_id uuid, term_start date, term_end date, mrr numeric)
AS 'MODULE_PATHNAME', 'cs_demo_consumer_terms'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_consumer_terms(int, int, int, date) IS
    'Demo rows for cs.contract_terms of the consumer profile: monthly terms from sign-up, the last one of a churned account not renewed; internal.';

CREATE OR REPLACE FUNCTION cs._demo_consumer_usage(customers int, days int, seed int, end_date date,
                               from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (customer_id uuid, user_id text, event text, feature text, quantity float8,
               occurred_at timestamptz)
AS 'MODULE_PATHNAME', 'cs_demo_consumer_usage'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION cs._demo_consumer_usage(int, int, int, date, date, date) IS
    'Demo rows for cs.usage_events of the consumer profile (ten event types) of the days between from_date and to_date (NULL: the whole window), month by month and in customer uuid order; internal.';

------------------------------------------------------------------------------
-- Entry points
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION cs.generate_demo_data(customers int DEFAULT 1000, days int DEFAULT 180, seed int DEFAULT 42,
                                      end_date date DEFAULT current_date - 1, profile text DEFAULT 'b2b')
RETURNS bigint
AS 'MODULE_PATHNAME', 'cs_generate_demo_data'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cs.generate_demo_data(int, int, int, date, text) IS
    'Generates a realistic demo dataset covering [end_date - days, end_date] (end_date by default yesterday, the last full day, so that no row is stamped ahead of the clock) plus cs.demo_ground_truth; returns the number of rows inserted. Deterministic: the same arguments give the same rows, ids and timestamps (UTC). customers 1-10,000,000, days 1-3650, no NULL arguments. Refuses (duplicate_object) when demo data (external_id ''demo-...'') already exists: remove it first with cs.drop_demo_data(). Creates the monthly usage partitions it needs, then analyzes the tables. profile ''b2b'' (the default): B2B accounts in every signal table, about 3 usage rows per customer-day; about 11% of customers churn per 180 days (constant hazard, no new customers are acquired, so long windows churn most of them); churned customers keep their last MRR and seats; their contract and subscriptions end on churned_at. profile ''consumer'': a consumer app on monthly plans: accounts of one to four users signing up over the window, monthly terms in cs.contract_terms (cs.customers holds the current or last one), ten event types of which add_friend, send_message, remove_friend and help_view follow the hidden engagement, about 4-6% churn per month at renewals, no tickets, invoices, NPS, contacts, subscriptions, seats or CSM touches, created_at left to the load time.';

-- Removes every demo customer and every row about it (signals, scores, alerts).
CREATE OR REPLACE FUNCTION cs.drop_demo_data()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    total bigint := 0;
    n     bigint;
    t     text;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS _cs_demo_ids (id uuid PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE _cs_demo_ids;
    INSERT INTO _cs_demo_ids SELECT c.id FROM cs.customers c WHERE c.external_id LIKE 'demo-%';
    ANALYZE _cs_demo_ids;
    DELETE FROM cs.alert_feedback f USING cs.alerts a, _cs_demo_ids d
     WHERE f.alert_id = a.id AND a.customer_id = d.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    FOREACH t IN ARRAY ARRAY['actions', 'alerts', 'opportunities', 'risk_assessments', 'customer_health_scores',
                             'customer_features', 'usage_events', 'support_tickets', 'invoices', 'engagements',
                             'nps_responses', 'contacts', 'subscriptions', 'contract_terms', 'demo_ground_truth']
    LOOP
        IF to_regclass(format('cs.%I', t)) IS NOT NULL THEN
            EXECUTE format('DELETE FROM cs.%I x USING _cs_demo_ids d WHERE x.customer_id = d.id', t);
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total + n;
        END IF;
    END LOOP;
    DELETE FROM cs.customers c USING _cs_demo_ids d WHERE c.id = d.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    -- their cs.dirty_customers rows, queued by the triggers, go with them (ON DELETE CASCADE)
    DROP TABLE _cs_demo_ids;
    RETURN total;
END;
$$;
COMMENT ON FUNCTION cs.drop_demo_data() IS
    'Deletes every demo customer (external_id ''demo-...'') with all its signals, scores, alerts and ground truth; returns the number of rows deleted. Other customers are untouched.';
