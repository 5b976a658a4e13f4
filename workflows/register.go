package workflows

import "go.temporal.io/sdk/worker"

// Register registers every workflow on w; the worker, the integration tests and the replay
// tests share it so a workflow cannot be forgotten in one of them.
func Register(w worker.WorkflowRegistry) {
	w.RegisterWorkflow(OnboardTenant)
	w.RegisterWorkflow(ProvisionTenant)
	w.RegisterWorkflow(SuspendTenant)
	w.RegisterWorkflow(RestoreTenant)
	w.RegisterWorkflow(OffboardTenant)
	w.RegisterWorkflow(RotateTenantKey)
	w.RegisterWorkflow(ApplyAuditRetention)
	w.RegisterWorkflow(ChangeTenantProfile)
	w.RegisterWorkflow(RotateMasterKey)
	w.RegisterWorkflow(ReconcileTenants)
}
