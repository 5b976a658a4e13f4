package api_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

func ioNop(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func operatorsStore(t *testing.T) *operators.Store { return operators.New(testenv.AppPool(t), "") }

func mustName(t *testing.T, s *operators.Store, token string) string {
	t.Helper()
	op, err := s.Authenticate(context.Background(), token)
	require.NoError(t, err)
	return op.Name
}
