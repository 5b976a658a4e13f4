package activities

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

func TestPermanentOnBadData(t *testing.T) {
	t.Parallel()
	for code, permanent := range map[string]bool{"22021": true, "23505": true, "40001": false, "08006": false} {
		err := permanentOnBadData(&pgconn.PgError{Code: code})
		var appErr *temporal.ApplicationError
		require.Equal(t, permanent, errors.As(err, &appErr) && appErr.NonRetryable(), code)
	}
	plain := errors.New("connection reset")
	require.Same(t, plain, permanentOnBadData(plain))
}
