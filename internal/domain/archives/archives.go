// Package archives keeps offboarding archives for a limited time: the worker deletes each one
// after its retention, recording the deletion in the platform audit chain first. An archive
// holds a whole tenant's data (encrypted); kept for ever it is a liability, not a backup.
package archives

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/misybot/tenancy/internal/domain/audit"
)

// Suffix ends every offboarding archive: a tar.gz encrypted with age.
const Suffix = ".tar.gz.age"

// Pruner deletes archives older than Keep from Dir.
type Pruner struct {
	Dir   string
	Keep  time.Duration
	Audit *audit.Writer
}

// Prune deletes the archives (and their checksum records) written before now-Keep, recording
// each deletion in the platform audit chain first (event id "archive-deleted/<name>", so a
// round that died half-way records it once when the next one deletes it).
func (p *Pruner) Prune(ctx context.Context, now time.Time) (int, error) {
	keep := p.Keep
	entries, err := os.ReadDir(p.Dir)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("archives: %w", err)
	}
	deleted := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, Suffix) {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < keep {
			continue
		}
		if _, err := p.Audit.Platform(ctx, audit.Event{
			ID: "archive-deleted/" + name, Actor: audit.Actor{Type: audit.ActorSystem, ID: "archive-retention"},
			Action: "tenant.archive.delete", Resource: "archive/" + name, Outcome: audit.OutcomeSuccess,
			Details: map[string]string{"keptFor": keep.String(), "writtenAt": info.ModTime().UTC().Format(time.RFC3339)},
		}); err != nil {
			return deleted, err
		}
		path := filepath.Join(p.Dir, name)
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return deleted, fmt.Errorf("archives: delete %s: %w", name, err)
		}
		_ = os.Remove(path + ".json")
		deleted++
	}
	return deleted, nil
}

// Run prunes every interval until ctx ends; failures are logged and tried again at the next
// round.
func (p *Pruner) Run(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := p.Prune(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("archive retention failed; trying again later", "err", err)
		case n > 0:
			logger.Info("archives deleted after their retention", "count", n, "retention", p.Keep)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
