// Package devtemporal holds the arguments of the Temporal CLI's dev server that the bench and
// the chaos suite start for themselves: the same tuning as scripts/services.sh (keep the two in
// step) and the lifecycle search attributes.
package devtemporal

import "github.com/misybot/tenancy/workflows"

// Tuning is the dev server's low-latency settings.
//
//   - The SQLite pragmas and transferProcessorMaxPollRPS remove the default's ~50 ms wait per
//     task dispatch (../shared/STACK.md).
//   - The single task-queue partition must hold from the first start on a state file.
//   - The 1 s queue checkpoints keep dispatch cost flat under load. The history service keeps
//     every task it ran since its queue's last checkpoint in memory (default: every 30 s) and
//     walks all of them each time a new task arrives, which with 1,000 reads a second took a
//     quarter of the server's CPU after a minute at 16 concurrent onboardings.
var Tuning = []string{
	"--sqlite-pragma", "journal_mode=WAL", "--sqlite-pragma", "synchronous=OFF",
	"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
	"--dynamic-config-value", `history.transferProcessorUpdateAckInterval="1s"`,
	"--dynamic-config-value", `history.visibilityProcessorUpdateAckInterval="1s"`,
	"--dynamic-config-value", `history.outboundProcessorUpdateAckInterval="1s"`,
	"--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
	"--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
}

// SearchAttributeFlags registers the lifecycle search attributes at start, which every run the
// API starts carries (make services registers them on the shared server instead).
func SearchAttributeFlags() []string {
	var flags []string
	for _, key := range workflows.SearchAttributeKeys {
		flags = append(flags, "--search-attribute", key.GetName()+"=Keyword")
	}
	return flags
}
