package workflows

import "go.temporal.io/sdk/worker"

// Register registers every workflow on w; the worker and the integration tests share it so a
// workflow cannot be forgotten in one of them.
func Register(w worker.Registry) {
	w.RegisterWorkflow(SuspendTenant)
	w.RegisterWorkflow(RestoreTenant)
}
