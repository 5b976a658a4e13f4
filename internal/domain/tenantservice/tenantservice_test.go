package tenantservice_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/domain/tenantservice"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

func setup(t *testing.T) (*tenantservice.Service, *registry.Registry, *seal.Sealer, *tenantredis.Store) {
	t.Helper()
	sealer, err := seal.New(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	reg := registry.New(testenv.AppPool(t))
	redis := tenantredis.New(testenv.RedisClient(t))
	return tenantservice.New(reg, sealer, redis, testenv.Logger(t)), reg, sealer, redis
}

// Registration defaults what was left out, and stores only the sealed secret: it opens to the
// returned secret for this tenant and no other.
func TestRegisterDefaultsAndSealsTheSecret(t *testing.T) {
	t.Parallel()
	svc, reg, sealer, _ := setup(t)
	ctx := context.Background()
	id := testenv.TenantID("svc")
	got, secret, err := svc.Register(ctx, tenant.Tenant{ID: id, Name: "Acme", ContactEmail: "ops@acme.test", Type: tenant.TypeTrial})
	require.NoError(t, err)
	require.Len(t, secret, 64)
	require.Equal(t, tenant.StatusPending, got.Status)
	require.Equal(t, tenant.DefaultPermissions(tenant.TypeTrial), got.Permissions, "absent permissions: the type's ceiling")
	require.Equal(t, []string{}, got.AllowedOrigins)
	require.Len(t, got.SiteID, 36, "a UUID when none was given")

	sealed, _, err := reg.SealedSecret(ctx, id)
	require.NoError(t, err)
	require.NotContains(t, string(sealed), secret, "stored sealed, never in the clear")
	plain, err := sealer.Open(id, registry.SecretField, sealed)
	require.NoError(t, err)
	require.Equal(t, secret, string(plain))
	_, err = sealer.Open(id+"x", registry.SecretField, sealed)
	require.Error(t, err, "the ciphertext opens for its own tenant only")

	_, _, err = svc.Register(ctx, tenant.Tenant{ID: id, Name: "Again", ContactEmail: "ops@acme.test", Type: tenant.TypeTrial})
	require.ErrorIs(t, err, registry.ErrExists)
}

// A permission beyond the type's ceiling, or a malformed id, is refused with the field named,
// and nothing is registered.
func TestRegisterRefusesWhatBreaksARule(t *testing.T) {
	t.Parallel()
	svc, reg, _, _ := setup(t)
	ctx := context.Background()
	id := testenv.TenantID("svc")
	_, _, err := svc.Register(ctx, tenant.Tenant{ID: id, Name: "T", ContactEmail: "a@b.co", Type: tenant.TypeTrial,
		Permissions: []tenant.Permission{tenant.DefaultPermissions(tenant.TypeTrial)[0], tenant.DefaultPermissions(tenant.TypeOwner)[len(tenant.DefaultPermissions(tenant.TypeOwner))-1]}})
	var fe *tenantservice.FieldError
	require.True(t, errors.As(err, &fe), "%v", err)
	require.Equal(t, "permissions[1]", fe.Field)
	_, err = reg.Get(ctx, id)
	require.ErrorIs(t, err, registry.ErrNotFound, "nothing registered")

	_, _, err = svc.Register(ctx, tenant.Tenant{ID: "Bad_ID", Name: "T", ContactEmail: "a@b.co", Type: tenant.TypeTrial})
	require.True(t, errors.As(err, &fe))
	require.Equal(t, "tenantId", fe.Field)
}

// A rotation issues a new secret, keeps the previous one for the overlap, and marks the context
// record so other API processes drop their cached secret.
func TestRotateSecret(t *testing.T) {
	t.Parallel()
	svc, reg, sealer, redis := setup(t)
	ctx := context.Background()
	id := testenv.TenantID("svc")
	_, first, err := svc.Register(ctx, tenant.Tenant{ID: id, Name: "T", ContactEmail: "a@b.co", Type: tenant.TypeStandard})
	require.NoError(t, err)
	tctx := tenant.WithID(ctx, id)
	require.NoError(t, redis.WriteContext(tctx, tenantredis.ContextRecord{Status: "active", Type: "standard"}))

	before := time.Now()
	second, until, err := svc.RotateSecret(ctx, id, time.Hour)
	require.NoError(t, err)
	require.NotEqual(t, first, second)
	require.WithinDuration(t, before.Add(time.Hour), until, time.Minute)
	secrets, err := reg.Secrets(ctx, id)
	require.NoError(t, err)
	cur, err := sealer.Open(id, registry.SecretField, secrets.Current)
	require.NoError(t, err)
	prev, err := sealer.Open(id, registry.SecretField, secrets.Previous)
	require.NoError(t, err)
	require.Equal(t, []string{second, first}, []string{string(cur), string(prev)})
	rec, err := redis.ReadContext(tctx)
	require.NoError(t, err)
	require.False(t, rec.SecretRotatedAt.Before(before.Truncate(time.Second)), "rotation marked: %v", rec.SecretRotatedAt)

	_, _, err = svc.RotateSecret(ctx, testenv.TenantID("missing"), 0)
	require.ErrorIs(t, err, registry.ErrNotFound)
}

// A profile change reaches the context record (type, permissions, origins), never its status.
func TestUpdateProfileRefreshesTheContextRecord(t *testing.T) {
	t.Parallel()
	svc, _, _, redis := setup(t)
	ctx := context.Background()
	id := testenv.TenantID("svc")
	created, _, err := svc.Register(ctx, tenant.Tenant{ID: id, Name: "T", ContactEmail: "a@b.co", Type: tenant.TypeStandard})
	require.NoError(t, err)
	tctx := tenant.WithID(ctx, id)
	require.NoError(t, redis.WriteContext(tctx, tenantservice.ContextRecord(created, time.Now())))

	perms := tenant.DefaultPermissions(tenant.TypeTrial)
	_, err = svc.UpdateProfile(ctx, id, registry.Update{SiteID: created.SiteID, Name: "T2", ContactEmail: "a@b.co",
		Type: tenant.TypeTrial, Permissions: perms, AllowedOrigins: []string{"https://t.test"}})
	require.NoError(t, err)
	rec, err := redis.ReadContext(tctx)
	require.NoError(t, err)
	require.Equal(t, "trial", rec.Type)
	require.Len(t, rec.Permissions, len(perms))
	require.Equal(t, []string{"https://t.test"}, rec.AllowedOrigins)
	require.Equal(t, string(tenant.StatusPending), rec.Status, "the status is the lifecycle's to write")
}
