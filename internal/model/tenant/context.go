package tenant

import (
	"context"
	"errors"
)

// ErrNoTenant is returned by IDFrom when the context carries no valid tenant. Every
// tenant-scoped store fails closed with it.
var ErrNoTenant = errors.New("no tenant in context")

type ctxKey struct{}

// WithID returns a context carrying the tenant id. It is the only way tenant-scoped stores
// (PostgreSQL, MongoDB, Redis) learn which tenant they serve: HTTP middleware sets it for
// tenant requests, activities set it for provisioning.
func WithID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// IDFrom returns the context's tenant id, or ErrNoTenant when it is absent or not a valid id
// (so a malformed id can never reach a query, a database name or a key pattern).
func IDFrom(ctx context.Context) (string, error) {
	id, _ := ctx.Value(ctxKey{}).(string)
	if id == "" || ValidateID(id) != nil {
		return "", ErrNoTenant
	}
	return id, nil
}
