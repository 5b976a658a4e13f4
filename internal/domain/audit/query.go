package audit

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// MaxPage bounds one page of List.
const MaxPage = 500

// Query selects events of one chain. Empty fields do not filter. Values are matched exactly
// and passed to MongoDB as plain strings, never as documents, so they cannot carry operators.
type Query struct {
	// From (inclusive) and To (exclusive) bound the event time.
	From, To  time.Time
	Action    string
	ActorType string
	ActorID   string
	Outcome   string
	// TenantID filters the platform chain by tenant (a tenant chain holds one tenant only).
	TenantID string
	// After is the seq of the last event of the previous page (0: first page). Pages follow the
	// chain's order, which is stable: an event's seq never changes, and new events only append.
	After int64
	// Desc pages from the newest event down; After is then the smallest seq already seen.
	Desc  bool
	Limit int
}

func (q Query) filter() bson.D {
	seq := bson.D{{Key: "$gte", Value: 1}} // chain events only
	if q.After > 0 {
		if q.Desc {
			seq = append(seq, bson.E{Key: "$lt", Value: q.After})
		} else {
			seq = append(seq, bson.E{Key: "$gt", Value: q.After})
		}
	}
	f := bson.D{{Key: "seq", Value: seq}}
	var at bson.D
	if !q.From.IsZero() {
		at = append(at, bson.E{Key: "$gte", Value: q.From.UTC()})
	}
	if !q.To.IsZero() {
		at = append(at, bson.E{Key: "$lt", Value: q.To.UTC()})
	}
	if len(at) > 0 {
		f = append(f, bson.E{Key: "at", Value: at})
	}
	for _, kv := range []struct{ key, value string }{
		{"action", q.Action}, {"actor.type", q.ActorType}, {"actor.id", q.ActorID},
		{"outcome", q.Outcome}, {"tenantId", q.TenantID},
	} {
		if kv.value != "" {
			f = append(f, bson.E{Key: kv.key, Value: kv.value})
		}
	}
	return f
}

// List returns one page of the chain's events matching q, in seq order (descending when
// q.Desc), and whether more follow. The next page is q with After set to the last event's seq.
func (c *Chain) List(ctx context.Context, q Query) ([]Event, bool, error) {
	if err := c.shipIfPending(ctx); err != nil {
		return nil, false, err
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	dir := 1
	if q.Desc {
		dir = -1
	}
	cur, err := c.events.Find(ctx, q.filter(), options.Find().SetSort(bson.D{{Key: "seq", Value: dir}}).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, false, fmt.Errorf("audit: list %s: %w", c.name, err)
	}
	out := []Event{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, false, fmt.Errorf("audit: list %s: %w", c.name, err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// DayCount is one row of Summary: how many events of one action had one outcome on one day.
type DayCount struct {
	// Day is the UTC date, YYYY-MM-DD.
	Day     string `json:"day"`
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	Count   int64  `json:"count"`
}

// Summary counts the chain's events matching q (q.After, q.Desc and q.Limit are ignored) per
// UTC day, action and outcome, ordered by day, action, outcome.
//
// The grouping is done here over a projection of the three fields, not with $group on
// $dateToString: FerretDB v1 does not implement $dateToString (NotImplemented), and the same
// code must run on FerretDB and MongoDB. The cost is reading one small projection per event in
// the range.
func (c *Chain) Summary(ctx context.Context, q Query) ([]DayCount, error) {
	q.After, q.Desc = 0, false
	if err := c.shipIfPending(ctx); err != nil {
		return nil, err
	}
	cur, err := c.events.Find(ctx, q.filter(), options.Find().
		SetProjection(bson.D{{Key: "at", Value: 1}, {Key: "action", Value: 1}, {Key: "outcome", Value: 1}}).
		SetBatchSize(1000))
	if err != nil {
		return nil, fmt.Errorf("audit: summary %s: %w", c.name, err)
	}
	defer cur.Close(ctx)
	type key struct{ day, action, outcome string }
	counts := map[key]int64{}
	for cur.Next(ctx) {
		var e struct {
			At      time.Time `bson:"at"`
			Action  string    `bson:"action"`
			Outcome string    `bson:"outcome"`
		}
		if err := cur.Decode(&e); err != nil {
			return nil, fmt.Errorf("audit: summary %s: %w", c.name, err)
		}
		counts[key{e.At.UTC().Format(time.DateOnly), e.Action, e.Outcome}]++
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("audit: summary %s: %w", c.name, err)
	}
	out := make([]DayCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, DayCount{Day: k.day, Action: k.action, Outcome: k.outcome, Count: n})
	}
	slices.SortFunc(out, func(a, b DayCount) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Action, b.Action), cmp.Compare(a.Outcome, b.Outcome))
	})
	return out, nil
}
