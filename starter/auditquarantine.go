package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
)

const auditQuarantineUsage = `usage:
  starter audit-quarantine [list]                                       the events the audit store refused for good
  starter audit-quarantine reship <eventId> [--chain <key>] [--reason <why>]
                                                                        put one back in its chain as it is (once its cause is fixed)
  starter audit-quarantine redact <eventId> --reason <why> [--chain <key>]
                                                                        put it back with its reason and details replaced by their SHA-256`

// auditQuarantineCommand lists and repairs quarantined audit events (internal/domain/audit,
// quarantine.go). Each repair is recorded in the platform chain with the shell user as actor;
// the shipper then appends the event to its chain.
func auditQuarantineCommand(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string) error {
	usage := func() {
		fmt.Fprintln(os.Stderr, auditQuarantineUsage)
		os.Exit(2)
	}
	cmd := "list"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	var r audit.Repair
	switch cmd {
	case "list":
		if len(args) != 0 {
			usage()
		}
	case "reship", "redact":
		if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
			usage()
		}
		r = audit.Repair{EventID: args[0], Redact: cmd == "redact", Operator: cliActor()}
		for i := 1; i < len(args); i++ {
			switch {
			case args[i] == "--chain" && i+1 < len(args):
				r.Chain = args[i+1]
				i++
			case args[i] == "--reason" && i+1 < len(args):
				r.Reason = args[i+1]
				i++
			default:
				usage()
			}
		}
		if r.Redact && r.Reason == "" {
			usage()
		}
	default:
		usage()
	}
	c, err := clients.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	sealer, err := seal.NewKeyring(cfg.MasterKeys())
	if err != nil {
		return err
	}
	w := c.AuditWriter(sealer)
	var out any
	if cmd == "list" {
		if out, err = w.Quarantine(ctx, 1000); err != nil {
			return err
		}
	} else {
		q, err := w.Repair(ctx, r)
		if err != nil {
			return err
		}
		logger.Info("audit event put back in its chain", "event_id", q.EventID, "chain", q.Chain, "redacted", r.Redact)
		out = map[string]any{"eventId": q.EventID, "chain": q.Chain, "decision": cmd}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
