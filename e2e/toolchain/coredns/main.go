// Command coredns is CoreDNS with only the plugins that the e2e node's
// cluster DNS needs (e2e/lib/cluster-dns.sh): answers for cluster.local
// and the reverse zones from the API server, nothing forwarded anywhere.
// Built by scripts/node-tools.sh.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// Each import registers one plugin; dnsserver.Directives below is the
	// order in which they handle a query (CoreDNS's plugin.cfg order).
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{
		"bind",
		"ready",
		"errors",
		"log",
		"loadbalance",
		"cache",
		"kubernetes",
	}
}

func main() { coremain.Run() }
