package activities_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/keys/seal"
)

// A worker still on the old master key refuses to re-seal the cells' stores for good (a retry
// would fail the same way), and one without a cell router has nothing to re-seal. The re-seal
// itself is tested against PostgreSQL in internal/domain/cells.
func TestResealCellStoresChecksTheVersion(t *testing.T) {
	t.Parallel()
	sealer, err := seal.NewKeyring(2, map[int][]byte{1: bytes.Repeat([]byte{1}, 32), 2: bytes.Repeat([]byte{2}, 32)})
	require.NoError(t, err)
	acts := &activities.Activities{Sealer: sealer}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(acts)

	_, err = env.ExecuteActivity(acts.ResealCellStores, activities.ResealCellsInput{Version: 3})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.True(t, appErr.NonRetryable())
	require.Equal(t, activities.ErrTypeInvalidInput, appErr.Type())
	require.Contains(t, err.Error(), "restart every worker")

	v, err := env.ExecuteActivity(acts.ResealCellStores, activities.ResealCellsInput{Version: 2})
	require.NoError(t, err)
	var res activities.ResealCellsResult
	require.NoError(t, v.Get(&res))
	require.Zero(t, res.Cells)
	require.Equal(t, map[string]string{"cellStoresResealed": "0"}, res.AuditDetails())
}
