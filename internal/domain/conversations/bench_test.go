package conversations_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/misybot/tenancy/internal/model/limits"
)

// BenchmarkPageAmongOtherConversations reads one page of a conversation (uncached: not the
// default page size) with the tenant holding no other message, then again, in the same run,
// with 3,000 messages in 60 other conversations; the two p50s are reported. A page read by _id
// must not grow with the messages it does not return.
func BenchmarkPageAmongOtherConversations(b *testing.B) {
	ctx, store := setup(b, limits.Default())
	conv, err := store.Create(ctx, "read")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 40 {
		if _, err := store.AddMessage(ctx, conv.ID, "user", fmt.Sprintf("m%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	read := func() time.Duration {
		start := time.Now()
		if _, err := store.Get(ctx, conv.ID, "", 40); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	p50 := func(n int) time.Duration {
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = read()
		}
		slices.Sort(ds)
		return ds[n/2]
	}
	alone := p50(200)
	for c := range 60 {
		other, err := store.Create(ctx, fmt.Sprintf("other %d", c))
		if err != nil {
			b.Fatal(err)
		}
		for i := range 50 {
			if _, err := store.AddMessage(ctx, other.ID, "user", fmt.Sprintf("o%d", i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	among := p50(200)
	b.ReportMetric(float64(alone.Microseconds()), "p50-alone-µs")
	b.ReportMetric(float64(among.Microseconds()), "p50-among-3000-µs")
}
