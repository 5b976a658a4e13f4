package clients

import (
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/keys/seal"
)

// AuditWriter builds the audit writer over the shared MongoDB client, keyed from the master
// key; the API and the worker must build it the same way, or one could not verify what the
// other wrote.
func (c *Clients) AuditWriter(sealer *seal.Sealer) *audit.Writer {
	keys := map[int][]byte{}
	for _, v := range sealer.Versions() {
		keys[v] = sealer.PurposeKeyOf(v, audit.KeyPurpose)
	}
	// Tenant chains live in each tenant's database, on its cell; the platform chain on the
	// control plane's MongoDB (c.Mongo).
	return audit.NewWriter(c.Postgres, c.Mongo, c.Cells(sealer, nil).TenantMongo(), sealer.PurposeKey(audit.KeyPurpose),
		audit.WithPlatformDatabase(c.AuditPlatformDatabase), audit.WithKeyring(sealer.Version(), keys))
}
