-- Tasks: what a CSM has to do about a customer, and when (Gainsight's calls to
-- action).  CSMs write them only through the SECURITY DEFINER functions below,
-- which check the caller as the alert lifecycle does: a member of
-- cscopilot_csm (cs._require_csm) who may see the task's customer
-- (cs._user_sees_customer); another CSM's customer is insufficient_privilege.
--
--   open ──complete──> done ──reopen (optionally with a new due date)──> open
--   assign: open tasks only
--
-- An open task past its due date raises one alert of type task
-- (cs._task_alerts, run by the worker's hourly job and by the task functions
-- for the task's customer); completing the task, or reopening it with a later
-- due date, resolves that alert.

-- Raises an alert for every overdue open task that has none, resolves the
-- task alerts whose task is no longer overdue, and keeps their assignee.
-- Alert writes for tasks are all here, so that they can move to the shared
-- raise/resolve path of src/sql/60_alerts.sql in one place.
CREATE OR REPLACE FUNCTION cs._task_alerts(as_of timestamptz DEFAULT now(), customer_ids uuid[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
DECLARE
    raised int;
    firings cs.alert_firing[];
    move_customers uuid[];
    move_to text[];
    grp    uuid[];
    who    text;
    ts     timestamptz := now();
    ids    uuid[];
    froms  text[];
    dets   jsonb[];
BEGIN
    -- Through the one alert path (src/sql/60_alerts.sql), under the refresh
    -- lock like every writer of alerts.
    PERFORM cs._refresh_lock();
    -- the firings first, then the writer over them (on a Citus cluster the
    -- writer may not run inside a query of the distributed tasks)
    firings := ARRAY(
        SELECT ROW(t.customer_id, NULL, 'task', 'medium', left('Overdue task: ' || t.title, 255),
                   format('The task "%s" about %s was due %s.', t.title, c.name, to_char(t.due_at, 'YYYY-MM-DD HH24:MI')),
                   jsonb_build_object('task_id', t.id, 'due_at', t.due_at, 'playbook', t.playbook, 'step', t.step),
                   CASE WHEN t.playbook IS NOT NULL THEN
                        jsonb_build_array(jsonb_build_object('playbook', t.playbook, 'action', p.action, 'step', t.step)) END,
                   t.assigned_to, coalesce(c.mrr, 0), NULL, jsonb_build_object('task_id', t.id))::cs.alert_firing
          FROM cs.tasks t
          JOIN cs.customers c ON c.id = t.customer_id
          LEFT JOIN cs.playbooks p ON p.name = t.playbook
         WHERE t.status = 'open' AND t.due_at < as_of
           AND (customer_ids IS NULL OR t.customer_id = ANY (customer_ids))
           -- one unresolved alert per task; a dismissed one silences its due date
           AND NOT EXISTS (SELECT 1 FROM cs.alerts x
                            WHERE x.customer_id = t.customer_id AND x.alert_type = 'task'
                              AND x.risk_factors ->> 'task_id' = t.id::text
                              AND (x.status IN ('open', 'acknowledged', 'snoozed')
                                   OR (x.status = 'dismissed'
                                       AND (x.risk_factors ->> 'due_at')::timestamptz = t.due_at)))
         ORDER BY t.due_at, t.id);
    SELECT count(*) INTO raised FROM cs._raise_alerts(firings) r WHERE r.outcome = 'created';

    -- Task alerts whose task is done or no longer overdue are resolved.
    -- (the ids first: on a Citus cluster the writer may not run inside a
    -- query of the distributed alerts)
    ids := ARRAY(SELECT al.id FROM cs.alerts al
                  WHERE al.alert_type = 'task' AND al.status IN ('open', 'acknowledged', 'snoozed')
                    AND (customer_ids IS NULL OR al.customer_id = ANY (customer_ids))
                    AND NOT EXISTS (SELECT 1 FROM cs.tasks k
                                     WHERE k.customer_id = al.customer_id AND k.id::text = al.risk_factors ->> 'task_id'
                                       AND k.status = 'open' AND k.due_at < as_of));
    IF cardinality(ids) > 0 THEN
        PERFORM cs._resolve_alerts(ids, 'the task is done or no longer overdue');
    END IF;
    ids := NULL;

    -- An alert follows its task to a new assignee: the moves read first,
    -- then written by key, on a Citus cluster one UPDATE per shard group (a
    -- modification joined with its values must target one shard).
    SELECT array_agg(al.customer_id ORDER BY al.id), array_agg(al.id ORDER BY al.id),
           array_agg(al.status ORDER BY al.id), array_agg(k.assigned_to ORDER BY al.id),
           array_agg(jsonb_build_object('from', al.assigned_to, 'to', k.assigned_to) ORDER BY al.id)
      INTO move_customers, ids, froms, move_to, dets
      FROM cs.alerts al
      JOIN cs.tasks k ON k.customer_id = al.customer_id AND k.id::text = al.risk_factors ->> 'task_id'
     WHERE al.alert_type = 'task' AND al.status IN ('open', 'acknowledged', 'snoozed')
       AND (customer_ids IS NULL OR al.customer_id = ANY (customer_ids))
       AND al.assigned_to IS DISTINCT FROM k.assigned_to;
    who := cs.acting_user();
    FOR grp IN SELECT g FROM cs._shard_groups(move_customers) g LOOP
        UPDATE cs.alerts al
           SET assigned_to = u.assignee, updated_at = ts, updated_by = who
          FROM unnest(move_customers, ids, move_to) AS u (customer_id, id, assignee)
         WHERE al.customer_id = u.customer_id AND al.id = u.id
           AND (grp IS NULL OR (al.customer_id = ANY (grp) AND u.customer_id = ANY (grp)));
    END LOOP;
    IF ids IS NOT NULL THEN
        PERFORM cs._log_alert_events(ids, array_fill('reassigned'::text, ARRAY[cardinality(ids)]), froms,
                                     'the task was reassigned', dets);
    END IF;
    RETURN raised;
END;
$$;
COMMENT ON FUNCTION cs._task_alerts(timestamptz, uuid[]) IS
    'Internal: for the given customers (all when NULL), raises one alert of type task (risk_factors task_id and due_at, assigned to the task''s assignee, NOTIFY cs_alerts) per open task due before as_of without an unresolved alert (nor a dismissed one for the same due date), resolves the unresolved task alerts whose task is done or no longer overdue, and keeps their assignee in step with the task. Returns the number of alerts raised. The worker runs it with the hourly data-quality job.';

-- The task a task function acts on, locked, after checking the caller.
CREATE OR REPLACE FUNCTION cs._task_for(task_id uuid, who name) RETURNS cs.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    t cs.tasks;
BEGIN
    IF task_id IS NULL THEN
        RAISE EXCEPTION 'task id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- its customer first, then the row locked by its key (on a Citus cluster
    -- a row lock needs the shard: the customer)
    SELECT k.customer_id INTO t.customer_id FROM cs.tasks k WHERE k.id = task_id;
    IF FOUND THEN
        SELECT * INTO t FROM cs.tasks k WHERE k.customer_id = t.customer_id AND k.id = task_id FOR UPDATE;
    END IF;
    IF t.id IS NULL THEN
        RAISE EXCEPTION 'task % does not exist', task_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT cs._user_sees_customer(who, t.customer_id) THEN
        RAISE EXCEPTION 'permission denied for task %', task_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The task''s customer is not one of role "%s".', who);
    END IF;
    RETURN t;
END;
$$;
COMMENT ON FUNCTION cs._task_for(uuid, name) IS
    'Internal: the task with this id, locked (no_data_found when there is none), when the user may see its customer (insufficient_privilege otherwise).';

-- Checks that a role exists and may see the customer, and returns it.
CREATE OR REPLACE FUNCTION cs._task_assignee(assignee text, customer_id uuid) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, cs, pg_temp
AS $$
BEGIN
    IF assignee IS NULL OR btrim(assignee) = '' THEN
        RAISE EXCEPTION 'assignee must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regrole(quote_ident(assignee)) IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', assignee USING ERRCODE = 'undefined_object',
            HINT = 'Tasks are assigned to role names, as cs.customers.csm.';
    END IF;
    IF NOT cs._user_sees_customer(assignee::name, customer_id) THEN
        RAISE EXCEPTION 'role "%" may not see the task''s customer', assignee
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Assign the task to the customer''s CSM, a role she is a member of, or an admin.';
    END IF;
    RETURN assignee;
END;
$$;
COMMENT ON FUNCTION cs._task_assignee(text, uuid) IS
    'Internal: the assignee when it is an existing role that may see the customer (undefined_object or invalid_parameter_value otherwise).';

CREATE OR REPLACE FUNCTION cs.create_task(customer_id uuid, title text, due_at timestamptz, detail text DEFAULT NULL,
                                          assigned_to text DEFAULT NULL, alert_id uuid DEFAULT NULL,
                                          playbook text DEFAULT NULL, step int DEFAULT NULL)
RETURNS cs.tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    who name := cs._require_csm('create tasks');
    t   cs.tasks;
BEGIN
    IF customer_id IS NULL OR due_at IS NULL THEN
        RAISE EXCEPTION 'customer_id and due_at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF title IS NULL OR btrim(title) = '' OR length(title) > 255 THEN
        RAISE EXCEPTION 'a task needs a title of 1 to 255 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(due_at) THEN
        RAISE EXCEPTION 'due_at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cs.customers c WHERE c.id = create_task.customer_id) THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT cs._user_sees_customer(who, customer_id) THEN
        RAISE EXCEPTION 'permission denied for customer %', customer_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The customer is not one of role "%s".', who);
    END IF;
    IF alert_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cs.alerts a
                                             WHERE a.id = create_task.alert_id AND a.customer_id = create_task.customer_id) THEN
        RAISE EXCEPTION 'alert % does not exist for customer %', alert_id, customer_id USING ERRCODE = 'no_data_found';
    END IF;
    IF playbook IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cs.playbooks p WHERE p.name = create_task.playbook) THEN
        RAISE EXCEPTION 'unknown playbook "%"', playbook USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Playbooks are the names in cs.playbooks.';
    END IF;
    IF step IS NOT NULL AND (playbook IS NULL OR step < 1) THEN
        RAISE EXCEPTION 'a step needs a playbook and must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO cs.tasks (customer_id, title, detail, due_at, assigned_to, created_by, alert_id, playbook, step)
    VALUES (customer_id, btrim(title), detail, due_at, cs._task_assignee(coalesce(assigned_to, who::text), customer_id),
            who, alert_id, playbook, step)
    RETURNING * INTO t;
    PERFORM cs._task_alerts(now(), ARRAY[t.customer_id]);
    RETURN t;
END;
$$;
COMMENT ON FUNCTION cs.create_task(uuid, text, timestamptz, text, text, uuid, text, int) IS
    'Creates an open task about a customer of the caller (a CSM; insufficient_privilege for another CSM''s customer, no_data_found for an unknown one), due at due_at, assigned to a role that may see the customer (the caller by default), optionally answering an alert of that customer and carrying out a playbook step. Returns the task.';

CREATE OR REPLACE FUNCTION cs.assign_task(id uuid, assigned_to text) RETURNS cs.tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    who name := cs._require_csm('assign tasks');
    t   cs.tasks := cs._task_for(id, who);
BEGIN
    IF t.status <> 'open' THEN
        RAISE EXCEPTION 'cannot assign task %: it is %', id, t.status
            USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = 'Only open tasks can be assigned.';
    END IF;
    UPDATE cs.tasks k SET assigned_to = cs._task_assignee(assign_task.assigned_to, t.customer_id), updated_at = now()
     WHERE k.customer_id = t.customer_id AND k.id = t.id
    RETURNING * INTO t;
    PERFORM cs._task_alerts(now(), ARRAY[t.customer_id]);
    RETURN t;
END;
$$;
COMMENT ON FUNCTION cs.assign_task(uuid, text) IS
    'Assigns an open task (object_not_in_prerequisite_state otherwise) to a role that may see its customer; its overdue alert follows. Returns the task.';

CREATE OR REPLACE FUNCTION cs.complete_task(id uuid, note text DEFAULT NULL) RETURNS cs.tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    who name := cs._require_csm('complete tasks');
    t   cs.tasks := cs._task_for(id, who);
BEGIN
    IF t.status <> 'open' THEN
        RAISE EXCEPTION 'cannot complete task %: it is %', id, t.status
            USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = 'Only open tasks can be completed.';
    END IF;
    UPDATE cs.tasks k
       SET status = 'done', completed_at = now(), completed_by = who, note = complete_task.note, updated_at = now()
     WHERE k.customer_id = t.customer_id AND k.id = t.id
    RETURNING * INTO t;
    PERFORM cs._task_alerts(now(), ARRAY[t.customer_id]);
    RETURN t;
END;
$$;
COMMENT ON FUNCTION cs.complete_task(uuid, text) IS
    'Marks an open task done (object_not_in_prerequisite_state otherwise) with an optional note, and resolves its overdue alert. Returns the task.';

CREATE OR REPLACE FUNCTION cs.reopen_task(id uuid, due_at timestamptz DEFAULT NULL) RETURNS cs.tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, cs, pg_temp
AS $$
DECLARE
    who name := cs._require_csm('reopen tasks');
    t   cs.tasks := cs._task_for(id, who);
BEGIN
    IF t.status <> 'done' THEN
        RAISE EXCEPTION 'cannot reopen task %: it is %', id, t.status
            USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = 'Only done tasks can be reopened.';
    END IF;
    IF reopen_task.due_at IS NOT NULL AND NOT isfinite(reopen_task.due_at) THEN
        RAISE EXCEPTION 'due_at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE cs.tasks k
       SET status = 'open', completed_at = NULL, due_at = coalesce(reopen_task.due_at, k.due_at), updated_at = now()
     WHERE k.customer_id = t.customer_id AND k.id = t.id
    RETURNING * INTO t;
    PERFORM cs._task_alerts(now(), ARRAY[t.customer_id]);
    RETURN t;
END;
$$;
COMMENT ON FUNCTION cs.reopen_task(uuid, timestamptz) IS
    'Reopens a done task (object_not_in_prerequisite_state otherwise), optionally with a new due date; it raises an overdue alert again once past due. Returns the task.';

-- A deleted alert leaves its tasks, without the alert (what ON DELETE SET NULL
-- (alert_id) did before issue 19: Citus refuses SET NULL on a foreign key that
-- includes the distribution column).  One customer's rows: on a cluster a
-- query on the colocated shard of cs.tasks.
CREATE OR REPLACE FUNCTION cs._tasks_forget_alert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, cs
AS $$
BEGIN
    UPDATE cs.tasks t SET alert_id = NULL
     WHERE t.customer_id = OLD.customer_id AND t.alert_id = OLD.id;
    RETURN OLD;
END;
$$;
COMMENT ON FUNCTION cs._tasks_forget_alert() IS
    'Internal: before an alert is deleted, clears alert_id of the tasks made for it (the tasks stay).';
CREATE OR REPLACE TRIGGER tasks_forget_alert BEFORE DELETE ON cs.alerts
    FOR EACH ROW EXECUTE FUNCTION cs._tasks_forget_alert();
