package clients

import (
	"log/slog"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/audit"
	"github.com/misybot/tenancy/internal/conversations"
	"github.com/misybot/tenancy/internal/keyring"
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
		Audit:         audit.NewWriter(c.Mongo, mongoStore, sealer.PurposeKey(audit.KeyPurpose)),
		ExportDir:     exportDir,
		Logger:        logger,
	}
}
