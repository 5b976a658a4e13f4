-- 00017: audit events a store refuses for good are set aside, not retried for ever.
--
-- Issue 32: the shipper retried, in order, an event FerretDB refused ("key must not contain
-- '.' sign"), so nothing behind it in its chain shipped. Now the shipper classifies the
-- refusal: a permanent one (the document itself is refused: its shape, its size) quarantines
-- the event. The row stays in its outbox (never lost), marked quarantined_at and left out of
-- sequencing and shipping; its backlog entry moves to audit_quarantine, which, like
-- audit_backlog, has no row-level security and holds no payload, so metrics, readiness and the
-- overview can count quarantined events of every tenant. The chain goes on without it (see
-- internal/domain/audit/quarantine.go); an operator re-ships it or ships it redacted
-- (`starter audit-quarantine`), both audited.

-- +goose Up
ALTER TABLE audit_outbox ADD COLUMN IF NOT EXISTS quarantined_at timestamptz;
ALTER TABLE platform_audit_outbox ADD COLUMN IF NOT EXISTS quarantined_at timestamptz;

CREATE TABLE IF NOT EXISTS audit_quarantine (
    -- The chain's key (as in audit_backlog and audit_heads) and the row's pos in its outbox.
    chain          text        NOT NULL,
    pos            bigint      NOT NULL,
    event_id       text        NOT NULL,
    -- The tenant whose outbox holds the row (NULL: the platform outbox).
    tenant_id      text,
    action         text        NOT NULL,
    -- The store's refusal: its error code (0 when it had none) and message.
    code           integer     NOT NULL DEFAULT 0,
    reason         text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_quarantine_pkey PRIMARY KEY (chain, pos),
    CONSTRAINT audit_quarantine_event_key UNIQUE (chain, event_id)
);
CREATE INDEX IF NOT EXISTS audit_quarantine_quarantined_at_idx ON audit_quarantine (quarantined_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON audit_quarantine TO tenancy_app;

-- +goose Down
DROP TABLE IF EXISTS audit_quarantine;
ALTER TABLE platform_audit_outbox DROP COLUMN IF EXISTS quarantined_at;
ALTER TABLE audit_outbox DROP COLUMN IF EXISTS quarantined_at;
