package clients

import (
	"log/slog"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/audit"
	"github.com/misybot/tenancy/internal/conversations"
	"github.com/misybot/tenancy/internal/keyring"
	"github.com/misybot/tenancy/internal/reconcile"
	"github.com/misybot/tenancy/internal/registry"
	"github.com/misybot/tenancy/internal/seal"
	"github.com/misybot/tenancy/internal/tenantdb"
	"github.com/misybot/tenancy/internal/tenantmongo"
	"github.com/misybot/tenancy/internal/tenantredis"
)

// Activities builds the worker's activities over the shared clients; the worker and the
// integration tests use it so both wire the same stores.
func (c *Clients) Activities(sealer *seal.Sealer, exportDir string, logger *slog.Logger) *activities.Activities {
	mongoStore := tenantmongo.New(c.Mongo)
	keys := keyring.New(c.Postgres, sealer)
	redisStore := tenantredis.New(c.Redis)
	return &activities.Activities{
		Registry:      registry.New(c.Postgres),
		Tenants:       tenantdb.New(c.Postgres),
		Keys:          keys,
		Mongo:         mongoStore,
		Redis:         redisStore,
		Conversations: conversations.New(mongoStore, keys, redisStore),
		Audit:         c.AuditWriter(sealer),
		Sealer:        sealer,
		ExportDir:     exportDir,
		Reports:       reconcile.NewReports(c.Postgres),
		Logger:        logger,
	}
}

// AuditWriter builds the audit writer over the shared MongoDB client, keyed from the master
// key; the API and the worker must build it the same way, or one could not verify what the
// other wrote.
func (c *Clients) AuditWriter(sealer *seal.Sealer) *audit.Writer {
	keys := map[int][]byte{}
	for _, v := range sealer.Versions() {
		keys[v] = sealer.PurposeKeyOf(v, audit.KeyPurpose)
	}
	return audit.NewWriter(c.Postgres, c.Mongo, tenantmongo.New(c.Mongo), sealer.PurposeKey(audit.KeyPurpose),
		audit.WithPlatformDatabase(c.AuditPlatformDatabase), audit.WithKeyring(sealer.Version(), keys))
}
