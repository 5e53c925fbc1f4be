// Package replica names the replica a process is, as a person reads it: "ingester-2"
// rather than a container ID or an IP. Prometheus finds compose's replicas by DNS, which
// gives addresses only (a reverse lookup in its DNS discovery was declined upstream,
// prometheus/prometheus#2312, and its Docker discovery needs the Docker socket, which
// Prometheus, published on a host port, must not hold). A replica can look itself up:
// Docker's embedded DNS answers a reverse lookup of a container's address with
// "<project>-<service>-<n>.<project>_<network>", the name compose gave it. The name then
// travels as the replica label of ecomstream_build_info (the dashboards' $instance list
// shows it) and is the default instance name of logs and the ledger.
package replica

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	once   sync.Once
	looked string
	chosen atomic.Pointer[string]
)

// Set records the name this process goes by, as logging.Instance chose it (the INSTANCE
// setting, else Lookup's name, else the host name), so ecomstream_build_info carries the
// name the logs and the ledger use.
func Set(name string) { chosen.Store(&name) }

// Name returns the name Set recorded, else Lookup's.
func Name() string {
	if p := chosen.Load(); p != nil {
		return *p
	}
	return Lookup()
}

// Lookup returns the compose name found by a reverse lookup of this process's own
// addresses, or "" (a plain process, a host outside compose). It runs once, bounded to a
// second.
func Lookup() string {
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		looked = lookup(ctx, net.DefaultResolver)
	})
	return looked
}

func lookup(ctx context.Context, r *net.Resolver) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		names, err := r.LookupAddr(ctx, ipn.IP.String())
		if err != nil {
			continue
		}
		for _, n := range names {
			if r := FromPTR(n); r != "" {
				return r
			}
		}
	}
	return ""
}

// FromPTR turns the name Docker's DNS gives a compose container's address,
// "<project>-<service>-<n>.<project>_<network>.", into "<service>-<n>"; a name of another
// shape (a host's own name, no network part, no replica number) gives "".
func FromPTR(ptr string) string {
	ptr = strings.TrimSuffix(ptr, ".")
	container, network, ok := strings.Cut(ptr, ".")
	if !ok || container == "" {
		return ""
	}
	i := strings.LastIndexByte(network, '_')
	if i <= 0 {
		return ""
	}
	project := network[:i]
	rest, ok := strings.CutPrefix(container, project+"-")
	if !ok {
		return ""
	}
	j := strings.LastIndexByte(rest, '-')
	if j <= 0 || j == len(rest)-1 || strings.Trim(rest[j+1:], "0123456789") != "" {
		return ""
	}
	return rest
}
