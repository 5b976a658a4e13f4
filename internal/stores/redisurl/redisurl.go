// Package redisurl reads REDIS_URL: one Redis server (redis://, rediss://) or a Redis Cluster
// named by its seed nodes (redis+cluster://, rediss+cluster://), and builds the matching
// go-redis client. The API, the worker and the tests parse it the same way.
package redisurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis URL schemes. A single server (or a Sentinel-less primary) is redis:// or rediss://
// (TLS), as go-redis parses them (redis.ParseURL). A Redis Cluster is named by its seed nodes,
// comma-separated, under redis+cluster:// or rediss+cluster://:
//
//	redis+cluster://[user:password@]host1:6379,host2:6379,host3:6379[?dial_timeout=3s&…]
//
// Any node is enough to find the others (the client reads the slot map from it); list several
// so that one node down at start does not matter. The query takes go-redis's cluster options
// (redis.ParseClusterURL). A cluster has only database 0: a path other than "/" or "/0" is an
// error. With rediss+cluster, TLS checks every node's certificate against the first host's
// name, so use a name every node's certificate holds.
const (
	ClusterScheme    = "redis+cluster"
	ClusterTLSScheme = "rediss+cluster"
)

// NewClient returns a client for rawURL: a *redis.ClusterClient for a cluster URL, otherwise a
// *redis.Client. Errors never repeat the URL (it may hold a password): it is parsed here
// first, so go-redis's own parse, whose errors may quote it, cannot fail on its syntax.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch u.Scheme {
	case ClusterScheme, ClusterTLSScheme:
		opts, err := parseCluster(u)
		if err != nil {
			return nil, err
		}
		return redis.NewClusterClient(opts), nil
	default:
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("%w (schemes: redis, rediss, %s, %s)", err, ClusterScheme, ClusterTLSScheme)
		}
		return redis.NewClient(opts), nil
	}
}

// parseCluster turns redis+cluster://h1,h2,h3?q into go-redis's own cluster URL form,
// redis://h1?q&addr=h2&addr=h3, and parses that.
func parseCluster(u *url.URL) (*redis.ClusterOptions, error) {
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("a Redis Cluster has database 0 only, got /%s", p)
	}
	var hosts []string
	for h := range strings.SplitSeq(u.Host, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return nil, errors.New("a cluster URL needs at least one host:port")
	}
	q := u.Query()
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	single := url.URL{Scheme: strings.TrimSuffix(u.Scheme, "+cluster"), User: u.User, Host: hosts[0], RawQuery: q.Encode()}
	opts, err := redis.ParseClusterURL(single.String())
	if err != nil {
		return nil, err
	}
	return opts, nil
}
