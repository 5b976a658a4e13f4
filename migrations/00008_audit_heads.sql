-- Each audit chain's head (newest seq and hash), anchored outside MongoDB. Verify compares it
-- with the chain: events removed from the end of a chain (which leave a shorter chain that
-- still links up) show as "truncated". Control-plane data, one row per chain, no tenant_id
-- column (the chain name carries the tenant).

-- +goose Up
CREATE TABLE audit_heads (
    chain      text        NOT NULL,
    seq        bigint      NOT NULL,
    hash       text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_heads_pkey PRIMARY KEY (chain),
    CONSTRAINT audit_heads_seq_positive CHECK (seq > 0)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON audit_heads TO tenancy_app;

-- +goose Down
DROP TABLE IF EXISTS audit_heads;
