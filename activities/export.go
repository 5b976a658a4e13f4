package activities

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.temporal.io/sdk/activity"

	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
)

// ExportInput names the tenant and the archive to write.
type ExportInput struct {
	TenantID string
	// Archive is the file name inside ExportDir, deterministic per workflow run.
	Archive string
}

// ExportResult describes the archive: where it is, its SHA-256, and what it holds.
type ExportResult struct {
	Path   string           `json:"path"`
	SHA256 string           `json:"sha256"`
	Bytes  int64            `json:"bytes"`
	Counts map[string]int64 `json:"counts"`
}

// excludedTables are tenant tables not exported: wrapped keys are no use outside this system
// and are destroyed by offboarding; the audit outbox holds the same events as the exported
// audit_events collection (the export ships it first).
var excludedTables = map[string]bool{`"public"."tenant_keys"`: true, `"public"."audit_outbox"`: true}

// ExportTenant writes the tenant's data (registry profile without secret, rows of every
// tenant table, every MongoDB collection including audit_events) to a tar.gz archive encrypted
// with age to the operators' recipients (EXPORT_RECIPIENT; "<archive>.age", no plaintext file
// ever on disk) and returns the SHA-256 of the encrypted file. It heartbeats after each table and collection.
//
// Idempotent: the archive name is deterministic per run; a finished archive (with its .sha256
// sidecar, written last) is returned as is, and an unfinished one is rebuilt from the start
// into a temporary file that is renamed into place only when complete, so a retry or a worker
// killed half-way never leaves a truncated archive under the final name. A partial gzip stream
// cannot be resumed, so a retry restarts the export rather than resuming it; the export is
// bounded by one tenant's data.
func (a *Activities) ExportTenant(ctx context.Context, in ExportInput) (ExportResult, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return ExportResult{}, err
	}
	if in.Archive == "" || strings.ContainsAny(in.Archive, `/\`) || strings.HasPrefix(in.Archive, ".") {
		return ExportResult{}, fmt.Errorf("export: bad archive name %q", in.Archive)
	}
	if err := os.MkdirAll(a.ExportDir, 0o700); err != nil {
		return ExportResult{}, fmt.Errorf("export dir: %w", err)
	}
	if len(a.ExportRecipients) == 0 {
		return ExportResult{}, errors.New("export: no EXPORT_RECIPIENT is configured: archives are written only encrypted to an operator's age key; set it on the worker and retry the step")
	}
	// Encrypted with age to the operators' recipients: no plaintext archive is ever written.
	final := filepath.Join(a.ExportDir, in.Archive+".age")
	if done, ok := readFinished(final); ok {
		return done, nil
	}
	// The tenant is offboarding, so nothing more enters its audit chain: ship what waits, and
	// the archive holds the whole trail.
	if err := a.shipTenantChain(tctx); err != nil {
		return ExportResult{}, err
	}

	tmp, err := os.CreateTemp(a.ExportDir, "."+in.Archive+".*.tmp")
	if err != nil {
		return ExportResult{}, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename

	hash := sha256.New()
	counter := &countingWriter{w: io.MultiWriter(tmp, hash)}
	enc, err := age.Encrypt(counter, a.ExportRecipients...)
	if err != nil {
		tmp.Close()
		return ExportResult{}, fmt.Errorf("export: encrypt: %w", err)
	}
	gz := gzip.NewWriter(enc)
	tw := tar.NewWriter(gz)
	counts := map[string]int64{}

	if err := a.exportPostgres(tctx, tw, counts); err != nil {
		tmp.Close()
		return ExportResult{}, err
	}
	if err := a.exportMongo(tctx, tw, counts); err != nil {
		tmp.Close()
		return ExportResult{}, err
	}
	manifest, _ := json.MarshalIndent(map[string]any{"tenantId": in.TenantID, "counts": counts}, "", "  ")
	if err := addFile(tw, "manifest.json", manifest); err != nil {
		tmp.Close()
		return ExportResult{}, err
	}
	if err := errors.Join(tw.Close(), gz.Close(), enc.Close()); err != nil {
		tmp.Close()
		return ExportResult{}, fmt.Errorf("export: finish archive: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return ExportResult{}, fmt.Errorf("export: flush: %w", err)
	}
	res := ExportResult{Path: final, SHA256: hex.EncodeToString(hash.Sum(nil)), Bytes: counter.n, Counts: counts}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return ExportResult{}, fmt.Errorf("export: %w", err)
	}
	meta, _ := json.Marshal(res)
	if err := os.WriteFile(final+".json", meta, 0o600); err != nil {
		return ExportResult{}, fmt.Errorf("export: record checksum: %w", err)
	}
	activity.GetLogger(ctx).Info("tenant exported", "tenant_id", in.TenantID, "path", final, "sha256", res.SHA256, "bytes", res.Bytes)
	return res, nil
}

func readFinished(final string) (ExportResult, bool) {
	b, err := os.ReadFile(final + ".json")
	if err != nil {
		return ExportResult{}, false
	}
	var res ExportResult
	if json.Unmarshal(b, &res) != nil {
		return ExportResult{}, false
	}
	// Trust the record only if the archive still hashes to it.
	f, err := os.Open(final)
	if err != nil {
		return ExportResult{}, false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil || hex.EncodeToString(h.Sum(nil)) != res.SHA256 {
		return ExportResult{}, false
	}
	return res, true
}

func (a *Activities) exportPostgres(ctx context.Context, tw *tar.Writer, counts map[string]int64) error {
	id, _ := tenant.IDFrom(ctx)
	t, err := a.Registry.Get(ctx, id)
	if err != nil {
		return err
	}
	profile, _ := json.MarshalIndent(t, "", "  ")
	if err := addFile(tw, "tenant.json", profile); err != nil {
		return err
	}
	return a.Tenants.ExportRows(ctx, func(table string, rows pgx.Rows) error {
		if excludedTables[table] {
			rows.Close()
			return nil
		}
		var buf strings.Builder
		var n int64
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			buf.WriteString(line)
			buf.WriteByte('\n')
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		counts["postgres:"+table] = n
		activity.RecordHeartbeat(ctx, "postgres:"+table)
		return addFile(tw, "postgres/"+strings.ReplaceAll(table, `"`, "")+".jsonl", []byte(buf.String()))
	})
}

func (a *Activities) exportMongo(ctx context.Context, tw *tar.Writer, counts map[string]int64) error {
	db, err := a.Mongo.Database(ctx)
	if err != nil {
		return err
	}
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("export: list collections: %w", err)
	}
	for _, name := range names {
		cur, err := db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			return fmt.Errorf("export: read %s: %w", name, err)
		}
		var buf strings.Builder
		var n int64
		for cur.Next(ctx) {
			doc := cur.Current
			// The archive is handed to the tenant and its keys are destroyed right after, so
			// message text and titles go in readable; the archive itself is encrypted with age.
			switch name {
			case tenantmongo.Messages:
				doc, err = a.decrypted(ctx, cur.Current, "text", "text", conversations.TextField)
			case tenantmongo.Conversations:
				doc, err = a.decrypted(ctx, cur.Current, "titleEnc", "title", conversations.TitleField)
			}
			if err != nil {
				cur.Close(ctx)
				return err
			}
			line, err := bson.MarshalExtJSON(doc, false, false)
			if err != nil {
				cur.Close(ctx)
				return err
			}
			buf.Write(line)
			buf.WriteByte('\n')
			n++
		}
		if err := errors.Join(cur.Err(), cur.Close(ctx)); err != nil {
			return fmt.Errorf("export: read %s: %w", name, err)
		}
		counts["mongodb:"+name] = n
		activity.RecordHeartbeat(ctx, "mongodb:"+name)
		if err := addFile(tw, "mongodb/"+name+".jsonl", []byte(buf.String())); err != nil {
			return err
		}
	}
	return nil
}

// decrypted returns a stored document with its encrypted field from decrypted into field to
// (replacing from), under the associated-data name aad.
func (a *Activities) decrypted(ctx context.Context, raw bson.Raw, from, to, aad string) (bson.Raw, error) {
	var m bson.M
	if err := bson.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if bin, ok := m[from].(primitive.Binary); ok {
		plain, err := a.Keys.Decrypt(ctx, aad, bin.Data)
		if err != nil {
			return nil, fmt.Errorf("export: decrypt %s of %v: %w", from, m["_id"], err)
		}
		delete(m, from)
		m[to] = string(plain)
	}
	return bson.Marshal(m)
}

func addFile(tw *tar.Writer, name string, body []byte) error {
	hdr := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(body)
	return err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
