package activities

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// Histories recorded before the payload types moved here hold the store types' JSON. Each
// payload must read that JSON into the same values its converter gives, so a run in flight
// decodes its old results, and no converter drops a field.
func TestPayloadsReadTheStoreTypesJSON(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	brk := &audit.Break{Seq: 4, ID: "e4", Problem: audit.ProblemEdited, Detail: "hash differs"}
	for _, tc := range []struct {
		name      string
		stored    any // what an older history holds
		converted any // what the activity returns today
		into      any // a zero payload to decode the stored JSON into
	}{
		{"postgres", tenantdb.ProvisionReport{SettingsCreated: 3, MembersCreated: 1},
			postgresReport(tenantdb.ProvisionReport{SettingsCreated: 3, MembersCreated: 1}), &PostgresReport{}},
		{"mongo", tenantmongo.ProvisionReport{Database: "tenant_a", CollectionsCreated: []string{"c"}, IndexesCreated: []string{"c.i"}, AlreadyPresent: 2},
			mongoReport(tenantmongo.ProvisionReport{Database: "tenant_a", CollectionsCreated: []string{"c"}, IndexesCreated: []string{"c.i"}, AlreadyPresent: 2}), &MongoReport{}},
		{"mongo deprovision", tenantmongo.DeprovisionReport{Database: "tenant_a", Dropped: true, Collections: 3, Documents: 7},
			mongoDeprovisionReport(tenantmongo.DeprovisionReport{Database: "tenant_a", Dropped: true, Collections: 3, Documents: 7}), &MongoDeprovisionReport{}},
		{"purge", tenantredis.PurgeProgress{Cursor: 9, Deleted: 5, Done: true},
			purgeProgress(tenantredis.PurgeProgress{Cursor: 9, Deleted: 5, Done: true}), &PurgeProgress{}},
		{"retention target", registry.RetentionTarget{TenantID: "a", Status: tenant.StatusActive, AuditPolicy: registry.AuditPolicy{RetentionDays: 30, LegalHold: true}},
			retentionTargets([]registry.RetentionTarget{{TenantID: "a", Status: tenant.StatusActive, AuditPolicy: registry.AuditPolicy{RetentionDays: 30, LegalHold: true}}})[0], &RetentionTarget{}},
		{"break", brk, *auditBreak(brk), &AuditBreak{}},
		{"audit event", audit.Event{ID: "w/r/s", TenantID: "a", Actor: audit.Actor{Type: audit.ActorOperator, ID: "alice"},
			Action: "tenant.suspend", Resource: "tenant/a", Outcome: audit.OutcomeSuccess, Reason: "why",
			WorkflowID: "w", RunID: "r", Details: map[string]string{"k": "v"}, At: at},
			AuditEvent{ID: "w/r/s", TenantID: "a", Actor: AuditActor{Type: ActorOperator, ID: "alice"},
				Action: "tenant.suspend", Resource: "tenant/a", Outcome: OutcomeSuccess, Reason: "why",
				WorkflowID: "w", RunID: "r", Details: map[string]string{"k": "v"}, At: at}, &AuditEvent{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.stored)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(raw, tc.into))
			require.Equal(t, tc.converted, deref(tc.into))
			again, err := json.Marshal(tc.converted)
			require.NoError(t, err)
			require.JSONEq(t, string(raw), string(again), "the payload writes the JSON older histories hold")
		})
	}
}

// A workflow's event reaches the audit writer whole: every field but the chain's, which the
// shipper gives.
func TestAuditEventRecordKeepsEveryField(t *testing.T) {
	ev := AuditEvent{ID: "w/r/s", TenantID: "a", Actor: AuditActor{Type: ActorSystem, ID: "OnboardTenant"},
		Action: "tenant.onboard", Resource: "tenant/a", Outcome: OutcomeFailure, Reason: "why", WorkflowID: "w", RunID: "r",
		Details: map[string]string{"k": "v"}, At: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	got, err := json.Marshal(ev.record())
	require.NoError(t, err)
	want, err := json.Marshal(ev)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
}

func deref(p any) any {
	switch v := p.(type) {
	case *PostgresReport:
		return *v
	case *MongoReport:
		return *v
	case *MongoDeprovisionReport:
		return *v
	case *PurgeProgress:
		return *v
	case *RetentionTarget:
		return *v
	case *AuditBreak:
		return *v
	case *AuditEvent:
		return *v
	}
	panic("add the type to deref")
}
