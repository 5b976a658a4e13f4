-- Operator decisions (internal/domain/decision): every decision that lets a waiting workflow grant or
-- destroy something (approve or reject an approval, retry or abort a parked step, cancel an
-- offboarding, approve a reconciliation's repairs or decide one drift), recorded by the API
-- (or the operator CLI) after its own checks: who decided, with which role, when, for which
-- workflow (and run) and which signal. The recorder then signals the run with the decision's
-- id only; the workflow reads the row back through an activity (activities.VerifyDecision) and
-- acts only if it names this workflow, this run and this signal, the role is one the step
-- accepts and, for approvals, the decider is not the requester. A raw
-- `temporal workflow signal … --input '"anyone"'` names no row, so it changes nothing.
--
-- Each decision is used at most once: the activity that acts on it claims it (consumed_by,
-- the run and signal count that took it), so an id copied out of a history cannot be sent
-- again for a second retry or a second approval.
--
-- Platform-level data, not tenant data: no tenant_id column, so no row-level security (the
-- workflow id names the tenant). Nothing here is secret: names, roles, times, drift ids.
--
-- Forward-only: the Down section removes nothing. Dropping the table would make every waiting
-- run refuse the decisions it is sent until it is created again; remove it with a new
-- migration once no workflow version reads it.

-- +goose Up
CREATE TABLE operator_decisions (
    -- 128 random bits in hex, made by the recorder: not guessable, so only a recorded
    -- decision can be named by a signal.
    decision_id text        NOT NULL,
    workflow_id text        NOT NULL,
    -- The run the decision is for; '' : any run of workflow_id (a reconciliation run continues
    -- as new under the same workflow id while it waits for decisions).
    run_id      text        NOT NULL DEFAULT '',
    -- The signal it authorises (workflows: ApproveSignal, AbortSignal, RetrySignal,
    -- CancelOffboardSignal, RepairSignal, DecideSignal, CloseSignal).
    kind        text        NOT NULL,
    decided_by  text        NOT NULL,
    -- The decider's role as the recorder checked it (operators.Role), or 'cli' for the
    -- operator CLI, which runs with the database's credentials.
    role        text        NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now(),
    -- What the decision is about beyond the run: the drift id of a reconciliation decision.
    subject     text        NOT NULL DEFAULT '',
    -- Set once, by the activity that acted on the decision: "<workflowId>/<runId>/<n>".
    consumed_by text,
    consumed_at timestamptz,
    CONSTRAINT operator_decisions_pkey PRIMARY KEY (decision_id),
    CONSTRAINT operator_decisions_id_shape CHECK (decision_id ~ '^[0-9a-f]{32}$'),
    CONSTRAINT operator_decisions_kind_known CHECK (kind IN ('approve', 'abort', 'retry', 'cancel-offboard', 'repair', 'decide', 'close')),
    CONSTRAINT operator_decisions_by_named CHECK (decided_by <> '' AND role <> ''),
    CONSTRAINT operator_decisions_consumed_together CHECK ((consumed_by IS NULL) = (consumed_at IS NULL))
);
-- What a run was sent, newest first (the investigation of a refusal, the audit).
CREATE INDEX operator_decisions_workflow_idx ON operator_decisions (workflow_id, decided_at DESC);

-- The application role records decisions and claims them; it may change nothing else of a
-- row (who decided, with which role, for what), not even through UPDATE.
GRANT SELECT, INSERT ON operator_decisions TO tenancy_app;
GRANT UPDATE (consumed_by, consumed_at) ON operator_decisions TO tenancy_app;

-- +goose Down
-- Forward-only (see above): nothing to undo.
SELECT 1;
