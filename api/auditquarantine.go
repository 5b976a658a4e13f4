package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/misybot/tenancy/internal/domain/audit"
)

// AuditQuarantineCheck is a soft readiness check: degraded while audit events the audit store
// refused for good are set aside (audit/quarantine.go). Their chains go on without them, so
// nothing else waits, but each stays out of its chain until an operator re-ships or redacts it
// (`starter audit-quarantine`; docs/operations.md, "Quarantined audit events").
func AuditQuarantineCheck(w *audit.Writer) Check {
	return Check{Name: "audit-quarantine", Soft: true, Probe: func(ctx context.Context) error {
		b, err := w.Backlog(ctx)
		if err != nil {
			return errors.New("audit quarantine unreadable")
		}
		if b.Quarantined > 0 {
			return fmt.Errorf("%d audit events refused by the audit store and quarantined, oldest %s: repair with `starter audit-quarantine`",
				b.Quarantined, b.QuarantinedOldest.Round(time.Second))
		}
		return nil
	}}
}

// overviewQuarantine is the overview's audit quarantine card: how many events are set aside
// and the newest few (their refusal, never their content). Nil when it could not be read.
func (s *Server) overviewQuarantine(ctx context.Context) *audit.QuarantineSummary {
	if s.audit == nil {
		return nil
	}
	q, err := s.audit.Quarantine(ctx, 5)
	if err != nil {
		s.logger.Warn("overview: audit quarantine unavailable", "err", err)
		return nil
	}
	return &q
}
