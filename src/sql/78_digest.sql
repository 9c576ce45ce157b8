-- The CSM's digest (as Gainsight's and Totango's e-mails): accounts needing
-- attention with 12-week health sparklines, new and waiting alerts, overdue
-- and upcoming tasks with the next action, renewals of the next 90 days with
-- risk-weighted MRR, and charts of the portfolio.  cs.digest_data gathers it
-- (under the caller's row-level security: a CSM sees her own accounts only);
-- cs.digest renders it as one self-contained HTML page (inline styles and
-- inline SVG, no script, no URL: it survives a mail client) and
-- cs.digest_text as plain text.  Delivery is outside the database: a sender
-- drains cs.outbox, where cs.enqueue_digest puts digests.

-- Text made safe for HTML element content and attribute values.
CREATE OR REPLACE FUNCTION cs.html_escape(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT replace(replace(replace(replace(replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
COMMENT ON FUNCTION cs.html_escape(text) IS 'Escapes & < > " and '' for HTML text and attribute values.';

-- Everything a digest shows, as jsonb.
CREATE OR REPLACE FUNCTION cs.digest_data(csm text, as_of date DEFAULT current_date) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    -- the end of as_of, or now for today: scores, alerts and tasks as they were then
    upto     timestamptz;
    weeks  date[];
    result jsonb;
BEGIN
    IF csm IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION 'csm and as_of must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    upto := least(now(), (as_of + 1)::timestamptz);
    weeks := ARRAY(SELECT (date_trunc('week', as_of::timestamp) - make_interval(weeks => 11 - i))::date
                     FROM generate_series(0, 11) i ORDER BY i);
    WITH acc AS MATERIALIZED (
        SELECT c.id, c.name, c.external_id, coalesce(c.mrr, 0) AS mrr, c.contract_end_date, h.band, h.overall_score,
               r.risk_score AS churn_risk, w.health, w.risk
          FROM cs.customers c
          LEFT JOIN LATERAL (SELECT s.overall_score, s.band FROM cs.customer_health_scores s
                              WHERE s.customer_id = c.id AND s.calculated_at < upto
                              ORDER BY s.calculated_at DESC LIMIT 1) h ON true
          LEFT JOIN LATERAL (SELECT a.risk_score FROM cs.risk_assessments a
                              WHERE a.customer_id = c.id AND a.risk_type = 'churn' AND a.created_at < upto
                              ORDER BY a.created_at DESC LIMIT 1) r ON true
         CROSS JOIN LATERAL (
            -- the last score of each week (up to upto, the end of the digest day), carried forward over weeks without one
            SELECT array_agg((SELECT s.overall_score FROM cs.customer_health_scores s
                               WHERE s.customer_id = c.id AND s.calculated_at < least(upto, (wk + 7)::timestamptz)
                               ORDER BY s.calculated_at DESC LIMIT 1) ORDER BY i) AS health,
                   array_agg((SELECT a.risk_score FROM cs.risk_assessments a
                               WHERE a.customer_id = c.id AND a.risk_type = 'churn'
                                 AND a.created_at < least(upto, (wk + 7)::timestamptz)
                               ORDER BY a.created_at DESC LIMIT 1) ORDER BY i) AS risk
              FROM unnest(weeks) WITH ORDINALITY u(wk, i)) w
         WHERE c.csm = digest_data.csm AND (c.churned_at IS NULL OR c.churned_at > as_of))
    SELECT jsonb_build_object(
        'csm', csm,
        'as_of', as_of,
        'weeks', to_jsonb(weeks),
        'customers', (SELECT count(*) FROM acc),
        'mrr', (SELECT coalesce(sum(a.mrr), 0) FROM acc a),
        'attention_total', (SELECT count(*) FROM acc a
                             WHERE a.band IN ('red', 'yellow') OR a.churn_risk >= 0.5),
        'attention', coalesce((SELECT jsonb_agg(x ORDER BY x.ord) FROM (
            SELECT row_number() OVER (ORDER BY coalesce(a.band = 'red', false) DESC, a.mrr * coalesce(a.churn_risk, 0) DESC, a.name, a.id) AS ord,
                   a.id, a.name, a.external_id, a.band, a.overall_score, a.churn_risk, a.mrr,
                   round(a.mrr * coalesce(a.churn_risk, 0), 2) AS risk_mrr, a.health
              FROM acc a
             WHERE a.band IN ('red', 'yellow') OR a.churn_risk >= 0.5
             ORDER BY 1 LIMIT 20) x), '[]'),
        'alerts_total', (SELECT count(*) FROM cs.alerts al JOIN acc a ON a.id = al.customer_id
                          WHERE al.status IN ('open', 'acknowledged', 'snoozed') AND al.created_at < upto),
        'alerts', coalesce((SELECT jsonb_agg(x ORDER BY x.ord) FROM (
            SELECT row_number() OVER (ORDER BY al.created_at >= upto - interval '7 days' DESC,
                                               cs.severity_rank(al.severity) DESC, al.mrr_at_risk DESC, al.created_at, al.id) AS ord,
                   al.id, al.alert_type, al.severity, al.status, al.title, a.name AS customer,
                   al.created_at >= upto - interval '7 days' AS new,
                   (upto::date - al.created_at::date) AS age_days,
                   coalesce(al.suggested_actions -> 0 ->> 'playbook', NULL) AS playbook,
                   coalesce(p.action, al.suggested_actions -> 0 ->> 'action') AS action
              FROM cs.alerts al
              JOIN acc a ON a.id = al.customer_id
              LEFT JOIN cs.playbooks p ON p.name = al.suggested_actions -> 0 ->> 'playbook'
             WHERE al.status IN ('open', 'acknowledged', 'snoozed') AND al.created_at < upto
             ORDER BY 1 LIMIT 20) x), '[]'),
        'tasks', coalesce((SELECT jsonb_agg(x ORDER BY x.due_at, x.id) FROM (
            SELECT t.id, t.title, t.due_at, to_char(t.due_at, 'YYYY-MM-DD') AS due, t.assigned_to, a.name AS customer,
                   t.due_at < upto AS overdue,
                   coalesce(p.action, pa.action) AS action, coalesce(t.playbook, al.suggested_actions -> 0 ->> 'playbook') AS playbook
              FROM cs.tasks t
              JOIN acc a ON a.id = t.customer_id
              LEFT JOIN cs.playbooks p ON p.name = t.playbook
              LEFT JOIN cs.alerts al ON al.id = t.alert_id
              LEFT JOIN cs.playbooks pa ON pa.name = al.suggested_actions -> 0 ->> 'playbook'
             WHERE t.status = 'open' AND t.created_at < upto AND t.due_at < upto + interval '7 days'
             ORDER BY t.due_at, t.id LIMIT 20) x), '[]'),
        'renewals', coalesce((SELECT jsonb_agg(x ORDER BY x.contract_end_date, x.name) FROM (
            SELECT a.id, a.name, a.contract_end_date, a.contract_end_date - as_of AS days, a.mrr, a.churn_risk, a.band,
                   round(a.mrr * coalesce(a.churn_risk, 0), 2) AS risk_mrr
              FROM acc a
             WHERE a.contract_end_date >= as_of AND a.contract_end_date <= as_of + 90
             ORDER BY a.contract_end_date, a.name LIMIT 20) x), '[]'),
        'renewals_total', (SELECT count(*) FROM acc a
                            WHERE a.contract_end_date >= as_of AND a.contract_end_date <= as_of + 90),
        'renewals_risk_mrr', (SELECT coalesce(round(sum(a.mrr * coalesce(a.churn_risk, 0)), 2), 0) FROM acc a
                               WHERE a.contract_end_date >= as_of AND a.contract_end_date <= as_of + 90),
        'bands', (SELECT jsonb_build_object(
                    'red', count(*) FILTER (WHERE a.band = 'red'),
                    'yellow', count(*) FILTER (WHERE a.band = 'yellow'),
                    'green', count(*) FILTER (WHERE a.band = 'green'),
                    'unscored', count(*) FILTER (WHERE a.band IS NULL)) FROM acc a),
        'mrr_at_risk', (SELECT jsonb_agg(v ORDER BY i) FROM (
            SELECT i, round(coalesce(sum(a.mrr * a.risk[i]), 0), 2) AS v
              FROM generate_series(1, 12) i LEFT JOIN acc a ON true GROUP BY i) m)
        ) INTO result;
    RETURN result;
END;
$$;
COMMENT ON FUNCTION cs.digest_data(text, date) IS
    'What the digest of a CSM shows as of a date, as jsonb, read under the caller''s row-level security: her active customers (csm = the given role), those needing attention (red or yellow health, or churn risk >= 0.5; the 20 first, red then by risk-weighted MRR) with 12 weekly health scores, unresolved alerts (new = raised within 7 days) with the suggested playbook, open tasks overdue or due within 7 days, renewals within 90 days with MRR x churn risk, counts per health band and the MRR at risk (current MRR x churn risk at the end of each week) over the last 12 weeks.';

-- An inline SVG sparkline of up to 12 scores in [0,1] (NULLs skipped).
CREATE OR REPLACE FUNCTION cs._svg_sparkline(vals numeric[], colour text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT '<svg width="120" height="28" viewBox="0 0 120 28" role="img" aria-label="health, last 12 weeks">'
    || '<line x1="4" y1="14" x2="116" y2="14" stroke="#e5e5e5" stroke-width="1"/>'
    || '<polyline fill="none" stroke="' || colour || '" stroke-width="2" stroke-linejoin="round" points="'
    || coalesce((SELECT string_agg(format('%s,%s', round(4 + (i - 1) * 112.0 / 11, 1),
                                          round(25 - least(greatest(v, 0), 1) * 22, 1)), ' ' ORDER BY i)
                   FROM unnest(vals) WITH ORDINALITY u(v, i) WHERE v IS NOT NULL), '')
    || '"/></svg>'
$$;
COMMENT ON FUNCTION cs._svg_sparkline(numeric[], text) IS 'Internal: an inline SVG sparkline (a polyline) of scores in [0,1], oldest first, in the given colour.';

CREATE OR REPLACE FUNCTION cs._band_colour(band text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE band WHEN 'red' THEN '#d9534f' WHEN 'yellow' THEN '#f0ad4e' WHEN 'green' THEN '#5cb85c' ELSE '#999999' END
$$;
COMMENT ON FUNCTION cs._band_colour(text) IS 'Internal: the digest''s colour of a health band (grey when unscored).';

-- Money without cents, with thousands separators.
CREATE OR REPLACE FUNCTION cs._money(v numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN v IS NULL THEN 'n/a' ELSE btrim(to_char(round(v), 'FM999,999,999,990')) END
$$;
COMMENT ON FUNCTION cs._money(numeric) IS 'Internal: an amount rounded to units with thousands separators (n/a when NULL).';

CREATE OR REPLACE FUNCTION cs.digest(csm text, as_of date DEFAULT current_date) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    d     jsonb := cs.digest_data(csm, as_of);
    x     jsonb;
    h     text;
    rows  text;
    b     jsonb := d -> 'bands';
    bmax  numeric;
    i     int;
    mx    numeric;
    pts   text;
    th    text := 'style="text-align:left;padding:4px 8px;border-bottom:1px solid #ddd;font-size:12px;color:#555"';
    td    text := 'style="padding:4px 8px;border-bottom:1px solid #eee;font-size:13px;vertical-align:middle"';
BEGIN
    h := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
      || cs.html_escape(format('Customer success digest: %s, %s', csm, as_of)) || '</title></head>'
      || '<body style="margin:0;padding:16px;background:#ffffff;font-family:Helvetica,Arial,sans-serif;color:#222">'
      || '<div style="max-width:1100px">'
      || '<h1 style="font-size:22px;margin:0 0 4px 0">' || cs.html_escape(format('Digest for %s', csm)) || '</h1>'
      || '<p style="margin:0 0 16px 0;color:#555;font-size:13px">' || cs.html_escape(format(
             '%s: %s accounts, MRR %s; %s need attention, %s open alerts, %s renewals in the next 90 days (%s risk-weighted MRR).',
             as_of, d ->> 'customers', cs._money((d ->> 'mrr')::numeric), d ->> 'attention_total', d ->> 'alerts_total',
             d ->> 'renewals_total', cs._money((d ->> 'renewals_risk_mrr')::numeric))) || '</p>';

    -- Charts first: health bands (bars) and MRR at risk over 12 weeks (area).
    bmax := greatest(1, (b ->> 'red')::numeric, (b ->> 'yellow')::numeric, (b ->> 'green')::numeric, (b ->> 'unscored')::numeric);
    h := h || '<table role="presentation" cellpadding="0" cellspacing="0" style="border-collapse:collapse;margin-bottom:16px"><tr>'
           || '<td style="vertical-align:top;padding-right:24px"><h2 style="font-size:15px;margin:0 0 6px 0">Health bands</h2>'
           || '<svg id="chart-bands" width="380" height="180" viewBox="0 0 380 180" role="img" aria-label="accounts per health band">';
    i := 0;
    FOR x IN SELECT jsonb_build_object('band', k, 'n', (b ->> k)::numeric)
               FROM unnest(ARRAY['red', 'yellow', 'green', 'unscored']) k
    LOOP
        h := h || format('<text x="0" y="%s" font-size="13" fill="#333">%s</text>', 30 + i * 40, x ->> 'band')
               || format('<rect x="80" y="%s" width="%s" height="26" fill="%s"/>', 12 + i * 40,
                         round(250 * (x ->> 'n')::numeric / bmax, 1), cs._band_colour(x ->> 'band'))
               || format('<text x="%s" y="%s" font-size="13" fill="#333">%s</text>',
                         round(86 + 250 * (x ->> 'n')::numeric / bmax, 1), 30 + i * 40, x ->> 'n');
        i := i + 1;
    END LOOP;
    h := h || '</svg></td>';

    mx := greatest(1, (SELECT max(v::numeric) FROM jsonb_array_elements_text(d -> 'mrr_at_risk') v));
    pts := (SELECT string_agg(format('%s,%s', round(50 + (k - 1) * 600.0 / 11, 1), round(150 - v::numeric / mx * 130, 1)), ' ' ORDER BY k)
              FROM jsonb_array_elements_text(d -> 'mrr_at_risk') WITH ORDINALITY e(v, k));
    h := h || '<td style="vertical-align:top"><h2 style="font-size:15px;margin:0 0 6px 0">MRR at risk, last 12 weeks</h2>'
           || '<svg id="chart-mrr" width="680" height="180" viewBox="0 0 680 180" role="img" aria-label="MRR at risk per week">'
           || '<line x1="50" y1="150" x2="650" y2="150" stroke="#999" stroke-width="1"/>'
           || '<line x1="50" y1="20" x2="650" y2="20" stroke="#eee" stroke-width="1"/>'
           || format('<text x="0" y="24" font-size="11" fill="#555">%s</text>', cs._money(mx))
           || '<text x="0" y="154" font-size="11" fill="#555">0</text>'
           || format('<polygon fill="#f2b8b5" stroke="none" points="50,150 %s 650,150"/>', pts)
           || format('<polyline fill="none" stroke="#c9302c" stroke-width="3" points="%s"/>', pts)
           || format('<text x="50" y="170" font-size="11" fill="#555">%s</text>', d -> 'weeks' ->> 0)
           || format('<text x="590" y="170" font-size="11" fill="#555">%s</text>', d -> 'weeks' ->> 11)
           || '</svg></td></tr></table>';

    -- Accounts needing attention.
    rows := '';
    FOR x IN SELECT e FROM jsonb_array_elements(d -> 'attention') e LOOP
        rows := rows || '<tr>'
             || '<td ' || td || '>' || cs.html_escape(x ->> 'name') || '</td>'
             || '<td ' || td || '><span style="display:inline-block;width:10px;height:10px;border-radius:5px;background:'
             || cs._band_colour(x ->> 'band') || '"></span> ' || coalesce(x ->> 'band', 'unscored') || '</td>'
             || '<td ' || td || '>' || coalesce(x ->> 'overall_score', 'n/a') || '</td>'
             || '<td ' || td || '>' || cs._svg_sparkline(ARRAY(SELECT v::numeric FROM jsonb_array_elements_text(x -> 'health') v),
                                                          cs._band_colour(x ->> 'band')) || '</td>'
             || '<td ' || td || '>' || coalesce(x ->> 'churn_risk', 'n/a') || '</td>'
             || '<td ' || td || ' align="right">' || cs._money((x ->> 'mrr')::numeric) || '</td>'
             || '<td ' || td || ' align="right">' || cs._money((x ->> 'risk_mrr')::numeric) || '</td></tr>';
    END LOOP;
    h := h || '<h2 style="font-size:17px;margin:16px 0 6px 0">Accounts needing attention</h2>'
           || CASE WHEN rows = '' THEN '<p style="font-size:13px;color:#555">None: every account is green and at low risk.</p>'
              ELSE '<table cellpadding="0" cellspacing="0" style="border-collapse:collapse;width:100%"><tr>'
                   || '<th ' || th || '>Account</th><th ' || th || '>Health</th><th ' || th || '>Score</th><th ' || th
                   || '>12 weeks</th><th ' || th || '>Churn risk</th><th ' || th || '>MRR</th><th ' || th
                   || '>MRR x risk</th></tr>' || rows || '</table>' END;

    -- Alerts.
    rows := '';
    FOR x IN SELECT e FROM jsonb_array_elements(d -> 'alerts') e LOOP
        rows := rows || '<tr>'
             || '<td ' || td || '>' || CASE WHEN (x ->> 'new')::boolean
                                            THEN '<b style="color:#c9302c">new</b>'
                                            ELSE cs.html_escape(format('%s days', x ->> 'age_days')) END || '</td>'
             || '<td ' || td || '>' || cs.html_escape(x ->> 'severity') || '</td>'
             || '<td ' || td || '>' || cs.html_escape(x ->> 'customer') || '</td>'
             || '<td ' || td || '>' || cs.html_escape(x ->> 'title') || '</td>'
             || '<td ' || td || '>' || coalesce(cs.html_escape(coalesce(x ->> 'action', x ->> 'playbook')), '') || '</td></tr>';
    END LOOP;
    h := h || '<h2 style="font-size:17px;margin:16px 0 6px 0">Alerts</h2>'
           || CASE WHEN rows = '' THEN '<p style="font-size:13px;color:#555">No open alerts.</p>'
              ELSE '<table cellpadding="0" cellspacing="0" style="border-collapse:collapse;width:100%"><tr>'
                   || '<th ' || th || '>Raised</th><th ' || th || '>Severity</th><th ' || th || '>Account</th><th ' || th
                   || '>Alert</th><th ' || th || '>Next action</th></tr>' || rows || '</table>' END;

    -- Tasks.
    rows := '';
    FOR x IN SELECT e FROM jsonb_array_elements(d -> 'tasks') e LOOP
        rows := rows || '<tr>'
             || '<td ' || td || '>' || CASE WHEN (x ->> 'overdue')::boolean
                                            THEN '<b style="color:#c9302c">overdue</b> ' ELSE '' END
             || cs.html_escape(x ->> 'due') || '</td>'
             || '<td ' || td || '>' || cs.html_escape(x ->> 'customer') || '</td>'
             || '<td ' || td || '>' || cs.html_escape(x ->> 'title') || '</td>'
             || '<td ' || td || '>' || cs.html_escape(x ->> 'assigned_to') || '</td>'
             || '<td ' || td || '>' || coalesce(cs.html_escape(coalesce(x ->> 'action', x ->> 'playbook')), '') || '</td></tr>';
    END LOOP;
    h := h || '<h2 style="font-size:17px;margin:16px 0 6px 0">Tasks overdue or due this week</h2>'
           || CASE WHEN rows = '' THEN '<p style="font-size:13px;color:#555">No task due.</p>'
              ELSE '<table cellpadding="0" cellspacing="0" style="border-collapse:collapse;width:100%"><tr>'
                   || '<th ' || th || '>Due</th><th ' || th || '>Account</th><th ' || th || '>Task</th><th ' || th
                   || '>Assigned to</th><th ' || th || '>Next action</th></tr>' || rows || '</table>' END;

    -- Renewals.
    rows := '';
    FOR x IN SELECT e FROM jsonb_array_elements(d -> 'renewals') e LOOP
        rows := rows || '<tr>'
             || '<td ' || td || '>' || cs.html_escape(x ->> 'contract_end_date') || '</td>'
             || '<td ' || td || '>' || cs.html_escape(format('%s days', x ->> 'days')) || '</td>'
             || '<td ' || td || '>' || cs.html_escape(x ->> 'name') || '</td>'
             || '<td ' || td || '>' || coalesce(x ->> 'band', 'unscored') || '</td>'
             || '<td ' || td || ' align="right">' || cs._money((x ->> 'mrr')::numeric) || '</td>'
             || '<td ' || td || '>' || coalesce(x ->> 'churn_risk', 'n/a') || '</td>'
             || '<td ' || td || ' align="right">' || cs._money((x ->> 'risk_mrr')::numeric) || '</td></tr>';
    END LOOP;
    h := h || '<h2 style="font-size:17px;margin:16px 0 6px 0">Renewals in the next 90 days</h2>'
           || CASE WHEN rows = '' THEN '<p style="font-size:13px;color:#555">No renewal in the next 90 days.</p>'
              ELSE '<table cellpadding="0" cellspacing="0" style="border-collapse:collapse;width:100%"><tr>'
                   || '<th ' || th || '>Renews</th><th ' || th || '>In</th><th ' || th || '>Account</th><th ' || th
                   || '>Health</th><th ' || th || '>MRR</th><th ' || th || '>Churn risk</th><th ' || th
                   || '>MRR x risk</th></tr>' || rows || '</table>' END;

    RETURN h || '<p style="margin-top:24px;font-size:11px;color:#888">Generated by cscopilot (cs.digest).</p></div></body></html>';
END;
$$;
COMMENT ON FUNCTION cs.digest(text, date) IS
    'The digest of a CSM as one self-contained HTML page (inline styles and SVG, no script, no external resource or URL; every text escaped): charts of her health bands and of MRR at risk over the last 12 weeks, accounts needing attention with 12-week health sparklines, open alerts with the next action, tasks overdue or due within 7 days, renewals within 90 days with MRR x churn risk (cs.digest_data). Read under the caller''s row-level security.';

CREATE OR REPLACE FUNCTION cs.digest_text(csm text, as_of date DEFAULT current_date) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs
AS $$
DECLARE
    d jsonb := cs.digest_data(csm, as_of);
    x jsonb;
    t text;
BEGIN
    t := format(E'Digest for %s, %s\n%s accounts, MRR %s; %s need attention, %s open alerts, %s renewals in the next 90 days (%s risk-weighted MRR).\n',
                csm, as_of, d ->> 'customers', cs._money((d ->> 'mrr')::numeric), d ->> 'attention_total',
                d ->> 'alerts_total', d ->> 'renewals_total', cs._money((d ->> 'renewals_risk_mrr')::numeric));
    t := t || format(E'Health bands: %s red, %s yellow, %s green, %s unscored.\n',
                     d -> 'bands' ->> 'red', d -> 'bands' ->> 'yellow', d -> 'bands' ->> 'green', d -> 'bands' ->> 'unscored');
    t := t || E'\nAccounts needing attention\n';
    FOR x IN SELECT e FROM jsonb_array_elements(d -> 'attention') e LOOP
        t := t || format(E'- %s: %s (%s), churn risk %s, MRR %s, MRR x risk %s, 12 weeks %s\n', x ->> 'name',
                         coalesce(x ->> 'band', 'unscored'), coalesce(x ->> 'overall_score', 'n/a'),
                         coalesce(x ->> 'churn_risk', 'n/a'), cs._money((x ->> 'mrr')::numeric),
                         cs._money((x ->> 'risk_mrr')::numeric),
                         (SELECT string_agg(cs.spark(v::numeric), '' ORDER BY k)
                            FROM jsonb_array_elements_text(x -> 'health') WITH ORDINALITY e(v, k)));
    END LOOP;
    t := t || E'\nAlerts\n';
    FOR x IN SELECT e FROM jsonb_array_elements(d -> 'alerts') e LOOP
        t := t || format(E'- %s[%s] %s: %s%s\n', CASE WHEN (x ->> 'new')::boolean THEN 'NEW ' ELSE '' END,
                         x ->> 'severity', x ->> 'customer', x ->> 'title',
                         coalesce(' -> ' || coalesce(x ->> 'action', x ->> 'playbook'), ''));
    END LOOP;
    t := t || E'\nTasks overdue or due this week\n';
    FOR x IN SELECT e FROM jsonb_array_elements(d -> 'tasks') e LOOP
        t := t || format(E'- %s%s %s: %s (%s)%s\n', CASE WHEN (x ->> 'overdue')::boolean THEN 'OVERDUE ' ELSE '' END,
                         x ->> 'due', x ->> 'customer', x ->> 'title', x ->> 'assigned_to',
                         coalesce(' -> ' || coalesce(x ->> 'action', x ->> 'playbook'), ''));
    END LOOP;
    t := t || E'\nRenewals in the next 90 days\n';
    FOR x IN SELECT e FROM jsonb_array_elements(d -> 'renewals') e LOOP
        t := t || format(E'- %s (in %s days) %s: MRR %s, churn risk %s, MRR x risk %s\n', x ->> 'contract_end_date',
                         x ->> 'days', x ->> 'name', cs._money((x ->> 'mrr')::numeric),
                         coalesce(x ->> 'churn_risk', 'n/a'), cs._money((x ->> 'risk_mrr')::numeric));
    END LOOP;
    t := t || E'\nMRR at risk, last 12 weeks: ' || (SELECT string_agg(cs._money(v::numeric), ' ' ORDER BY k)
                                                    FROM jsonb_array_elements_text(d -> 'mrr_at_risk') WITH ORDINALITY e(v, k)) || E'\n';
    RETURN t;
END;
$$;
COMMENT ON FUNCTION cs.digest_text(text, date) IS
    'The digest of a CSM as plain text (the text/plain part of a mail): the same sections as cs.digest, sparklines as glyphs.';

CREATE OR REPLACE FUNCTION cs.enqueue_digest(csm text, as_of date DEFAULT current_date) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    id bigint;
BEGIN
    INSERT INTO cs.outbox (topic, recipient, subject, payload)
    VALUES ('digest', csm, format('Customer success digest for %s, %s', csm, as_of),
            jsonb_build_object('csm', csm, 'as_of', as_of, 'html', cs.digest(csm, as_of), 'text', cs.digest_text(csm, as_of)))
    RETURNING outbox.id INTO id;
    RETURN id;
END;
$$;
COMMENT ON FUNCTION cs.enqueue_digest(text, date) IS
    'Puts the digest of a CSM (html and text, as read by the caller) in cs.outbox for a mail sender; returns the message id. Run it as an admin (pg_cron: once a day per CSM).';
