package tenantredis_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// benchDB is the Redis database the benchmark fills and flushes. Tests run in database 0 (the
// default of TEST_REDIS_URL); the benchmark's million keys go to database 15 through a
// separate client, so they never slow down or mix with the tests', and FLUSHDB here empties
// database 15 only.
const benchDB = 15

const (
	benchVictimKeys  = 100_000
	benchOtherKeys   = 1_000_000
	benchOthers      = 100 // tenants sharing benchOtherKeys
	benchTenantStart = "tenant:{bench-"
)

// benchClient connects to database benchDB and empties it, at the start and at the end. It
// refuses to flush a database holding anything but this benchmark's keys (a leftover of an
// interrupted run is fine; someone else's data in database 15 is not).
func benchClient(b *testing.B) *redis.Client { return benchClientOn(b, benchDB) }

// benchClientOn is benchClient on database db.
func benchClientOn(b *testing.B, db int) *redis.Client {
	b.Helper()
	opts, err := redis.ParseURL(testenv.RedisURL)
	require.NoError(b, err, "TEST_REDIS_URL")
	opts.DB = db
	rc := redis.NewClient(opts)
	b.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	require.NoError(b, rc.Ping(ctx).Err(), "Redis at %s; start the servers with `make services`", opts.Addr)
	if n, err := rc.DBSize(ctx).Result(); err == nil && n > 0 {
		iter := rc.Scan(ctx, 0, "*", 10_000).Iterator()
		for iter.Next(ctx) {
			if !strings.HasPrefix(iter.Val(), benchTenantStart) {
				b.Fatalf("Redis database %d holds keys that are not this benchmark's (e.g. %q); not flushing it", db, iter.Val())
			}
		}
		require.NoError(b, iter.Err())
	}
	flush := func() { require.NoError(b, rc.FlushDB(context.Background()).Err()) }
	flush()
	b.Cleanup(flush)
	return rc
}

// BenchmarkPurge measures offboarding a tenant with 100k keys (Store.Purge, batches of 1000)
// when the other tenants hold no keys, then 1M keys, in the same Redis database: SCAN walks
// the whole keyspace, so the second purge pays for the other tenants' keys. Meanwhile another
// tenant reads one of its keys in a loop on its own client, as a request check would, and the
// benchmark reports the p99 of those GETs during the purge among 1M keys, and, for reference,
// during the purge alone and with no purge running.
//
// Metrics: purge-alone-s, purge-among-1M-s, ratio (among-1M / alone), p99-other-get-µs
// (during the purge among 1M keys), p99-other-get-alone-µs, p99-idle-get-µs.
func BenchmarkPurge(b *testing.B) {
	rc := benchClient(b)
	readerOpts := *rc.Options()
	reader := redis.NewClient(&readerOpts)
	b.Cleanup(func() { _ = reader.Close() })
	store := tenantredis.New(rc)
	readerScope, err := tenantredis.New(reader).Scope(tenant.WithID(context.Background(), "bench-reader"))
	require.NoError(b, err)

	var alone, among time.Duration
	var p99Alone, p99Among, p99Idle []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		require.NoError(b, rc.FlushDB(context.Background()).Err())
		require.NoError(b, readerScope.Set(context.Background(), "item", "0", "v", 0))
		fill(b, rc, "bench-victim", 0, benchVictimKeys)
		b.StartTimer()
		d, lat := purgeWhileReading(b, store, "bench-victim", readerScope)
		b.StopTimer()
		alone += d
		p99Alone = append(p99Alone, lat)

		for i := range benchOthers {
			fill(b, rc, fmt.Sprintf("bench-o%03d", i), 0, benchOtherKeys/benchOthers)
		}
		fill(b, rc, "bench-victim", 0, benchVictimKeys)
		idle, err := readFor(readerScope, 2*time.Second)
		require.NoError(b, err)
		p99Idle = append(p99Idle, idle)
		b.StartTimer()
		d, lat = purgeWhileReading(b, store, "bench-victim", readerScope)
		b.StopTimer()
		among += d
		p99Among = append(p99Among, lat)
	}
	n := float64(b.N)
	b.ReportMetric(alone.Seconds()/n, "purge-alone-s")
	b.ReportMetric(among.Seconds()/n, "purge-among-1M-s")
	b.ReportMetric(among.Seconds()/alone.Seconds(), "ratio")
	b.ReportMetric(micros(slices.Max(p99Among)), "p99-other-get-µs")
	b.ReportMetric(micros(slices.Max(p99Alone)), "p99-other-get-alone-µs")
	b.ReportMetric(micros(slices.Max(p99Idle)), "p99-idle-get-µs")
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// purgeWhileReading purges the victim completely and returns how long it took and the p99 of
// the reader's GETs meanwhile.
func purgeWhileReading(b *testing.B, store *tenantredis.Store, victimID string, reader *tenantredis.Scope) (time.Duration, time.Duration) {
	b.Helper()
	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		p99     time.Duration
		readErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		p99, readErr = readUntil(reader, stop)
	}()
	start := time.Now()
	prog, err := store.Purge(tenant.WithID(context.Background(), victimID), tenantredis.PurgeProgress{}, 1000, nil)
	d := time.Since(start)
	close(stop)
	wg.Wait()
	require.NoError(b, err)
	require.NoError(b, readErr)
	require.Equal(b, tenantredis.PurgeProgress{Deleted: benchVictimKeys, Done: true}, prog)
	return d, p99
}

func readFor(reader *tenantredis.Scope, d time.Duration) (time.Duration, error) {
	stop := make(chan struct{})
	time.AfterFunc(d, func() { close(stop) })
	return readUntil(reader, stop)
}

// readUntil GETs the reader's key back to back until stop closes and returns the p99 latency.
func readUntil(reader *tenantredis.Scope, stop <-chan struct{}) (time.Duration, error) {
	var lat []time.Duration
	ctx := context.Background()
	for {
		select {
		case <-stop:
			if len(lat) == 0 {
				return 0, nil
			}
			slices.Sort(lat)
			return lat[len(lat)*99/100], nil
		default:
		}
		t := time.Now()
		if _, err := reader.Get(ctx, "item", "0"); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(t))
	}
}

// indexBenchDB is the database of BenchmarkPurgeIndexed, apart from BenchmarkPurge's.
const indexBenchDB = 5

const (
	indexBenchVictimKeys = 1000
	indexBenchOtherKeys  = 200_000
	indexBenchReps       = 25 // purges per size and path, of which the median is reported
)

// BenchmarkPurgeIndexed measures finding and deleting the keys of a tenant with 1000 keys
// (Store.Purge, batches of 1000) alone in the database, then among 200,000 keys of 100 other
// tenants, by both paths in the same run: the index of a tenant written through the store, and
// the SCAN walk of a tenant from before the index (the same keys written raw, no mark). Each
// figure is the median of indexBenchReps purges.
//
// Metrics: index-alone-ms, index-among-200k-ms, index-ratio (among / alone), and the same for
// scan-*.
func BenchmarkPurgeIndexed(b *testing.B) {
	rc := benchClientOn(b, indexBenchDB)
	store := tenantredis.New(rc)
	ctx := context.Background()
	const victim = "bench-ivictim"
	vctx := tenant.WithID(ctx, victim)
	sc, err := store.Scope(vctx)
	require.NoError(b, err)

	purge := func(indexed bool) time.Duration {
		b.Helper()
		if indexed {
			require.NoError(b, store.WriteContext(vctx, tenantredis.ContextRecord{Status: "active", Type: "standard"}))
			for i := range indexBenchVictimKeys {
				require.NoError(b, sc.Set(ctx, "item", fmt.Sprint(i), victim, 0))
			}
		} else {
			fill(b, rc, victim, 0, indexBenchVictimKeys)
		}
		start := time.Now()
		prog, err := store.Purge(vctx, tenantredis.PurgeProgress{}, 1000, nil)
		d := time.Since(start)
		require.NoError(b, err)
		require.True(b, prog.Done)
		require.GreaterOrEqual(b, prog.Deleted, int64(indexBenchVictimKeys))
		return d
	}
	median := func(indexed bool) time.Duration {
		ds := make([]time.Duration, indexBenchReps)
		for i := range ds {
			ds[i] = purge(indexed)
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}

	var idxAlone, idxAmong, scanAlone, scanAmong time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		require.NoError(b, rc.FlushDB(ctx).Err())
		b.StartTimer()
		idxAlone += median(true)
		scanAlone += median(false)
		b.StopTimer()
		for i := range 100 {
			fill(b, rc, fmt.Sprintf("bench-io%03d", i), 0, indexBenchOtherKeys/100)
		}
		b.StartTimer()
		idxAmong += median(true)
		scanAmong += median(false)
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return d.Seconds() * 1000 / n }
	b.ReportMetric(ms(idxAlone), "index-alone-ms")
	b.ReportMetric(ms(idxAmong), "index-among-200k-ms")
	b.ReportMetric(idxAmong.Seconds()/idxAlone.Seconds(), "index-ratio")
	b.ReportMetric(ms(scanAlone), "scan-alone-ms")
	b.ReportMetric(ms(scanAmong), "scan-among-200k-ms")
	b.ReportMetric(scanAmong.Seconds()/scanAlone.Seconds(), "scan-ratio")
}
