package tenantmongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Inspection is what a tenant database holds compared with the layout Provision creates.
// Names in MissingIndexes and ConflictingIndexes are "collection.index".
type Inspection struct {
	// Exists is false when the database has no collection at all (MongoDB has no empty
	// databases: one without collections does not exist).
	Exists             bool
	Collections        []string
	MissingCollections []string
	MissingIndexes     []string
	// ConflictingIndexes exist under one of our names with other keys or options.
	ConflictingIndexes []string
}

// Inspect compares the context tenant's database with the layout: which collections and
// indexes are missing, and which indexes exist with another definition. It only reads: one
// listCollections, and one listIndexes per collection present (never a document), so its cost
// does not grow with the tenant's data. A database that does not exist is not created.
func (s *Store) Inspect(ctx context.Context) (Inspection, error) {
	db, err := s.Database(ctx)
	if err != nil {
		return Inspection{}, err
	}
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return Inspection{}, fmt.Errorf("tenantmongo: inspect %s: list collections: %w", db.Name(), err)
	}
	slices.Sort(names)
	in := Inspection{Exists: len(names) > 0, Collections: names}
	if !in.Exists {
		return in, nil
	}
	for _, c := range layout {
		if !slices.Contains(names, c.name) {
			in.MissingCollections = append(in.MissingCollections, c.name)
			continue
		}
		specs, err := db.Collection(c.name).Indexes().ListSpecifications(ctx)
		if err != nil {
			return Inspection{}, fmt.Errorf("tenantmongo: inspect %s: list indexes of %s: %w", db.Name(), c.name, err)
		}
		for _, ix := range c.indexes {
			spec := findSpec(specs, ix.name)
			switch {
			case spec == nil:
				in.MissingIndexes = append(in.MissingIndexes, c.name+"."+ix.name)
			case ix.matches(spec) != nil:
				in.ConflictingIndexes = append(in.ConflictingIndexes, c.name+"."+ix.name)
			}
		}
	}
	return in, nil
}

// EnsureIndexes creates the layout's indexes that are missing from the collections the
// context tenant's database already has, and returns their names ("collection.index"). It
// creates no database and no collection (a collection that is gone may have held data: putting
// an empty one back is a decision, see Provision), and changes no existing index (one with our
// name and another definition is ErrIndexConflict). Idempotent: an index present is skipped,
// and each index is created in its own call, checked afterwards.
func (s *Store) EnsureIndexes(ctx context.Context) ([]string, error) {
	db, err := s.Database(ctx)
	if err != nil {
		return nil, err
	}
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("tenantmongo: ensure indexes of %s: list collections: %w", db.Name(), err)
	}
	var created []string
	for _, c := range layout {
		if !slices.Contains(names, c.name) {
			continue
		}
		coll := db.Collection(c.name)
		specs, err := coll.Indexes().ListSpecifications(ctx)
		if err != nil {
			return created, fmt.Errorf("tenantmongo: ensure indexes: list indexes of %s: %w", c.name, err)
		}
		for _, ix := range c.indexes {
			if spec := findSpec(specs, ix.name); spec != nil {
				if err := ix.matches(spec); err != nil {
					return created, fmt.Errorf("tenantmongo: %s.%s: %w", c.name, ix.name, err)
				}
				continue
			}
			opts := options.Index().SetName(ix.name)
			if ix.unique {
				opts.SetUnique(true)
			}
			got, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts})
			var ce mongo.CommandError
			if errors.As(err, &ce) && (ce.Code == codeIndexOptionsConflict || ce.Code == codeIndexKeySpecsConflict) {
				return created, fmt.Errorf("tenantmongo: create index %s.%s: %w: %w", c.name, ix.name, ErrIndexConflict, err)
			}
			if err != nil {
				return created, fmt.Errorf("tenantmongo: create index %s.%s: %w", c.name, ix.name, err)
			}
			if got != ix.name {
				return created, fmt.Errorf("tenantmongo: create index %s.%s: server created %q: %w", c.name, ix.name, got, ErrIndexConflict)
			}
			created = append(created, c.name+"."+ix.name)
		}
	}
	return created, nil
}

// TenantDatabases lists the names of the databases that look like tenant databases
// ("tenant_" + something), whose id part starts with idPrefix, as that id part (which need not
// be a valid tenant id: the point is to find what should not be there). One listDatabases with
// a name filter and nameOnly, so the server reads no database's contents. idPrefix must hold
// only [a-z0-9-] (tenant id characters), which have no meaning in a regular expression.
func (s *Store) TenantDatabases(ctx context.Context, idPrefix string) ([]string, error) {
	if strings.Trim(idPrefix, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return nil, fmt.Errorf("tenantmongo: tenant databases: prefix %q: only [a-z0-9-]", idPrefix)
	}
	filter := bson.D{{Key: "name", Value: primitive.Regex{Pattern: "^" + DatabasePrefix + idPrefix}}}
	names, err := s.client.ListDatabaseNames(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("tenantmongo: list databases: %w", err)
	}
	var out []string
	for _, n := range names {
		// Checked again here: a server that ignored the filter must not make us report, or
		// later drop, a database that is not a tenant's.
		if id, ok := strings.CutPrefix(n, DatabasePrefix); ok && strings.HasPrefix(id, idPrefix) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}
