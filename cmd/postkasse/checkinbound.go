package main

import (
	"fmt"
	"io"
	"strings"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/resolver"
)

// printInbound tells what the checks of mail from other servers will do
// (SPEC §11), which DNS server they ask, and where certificates come from.
func printInbound(w io.Writer, cfg *config.Config) {
	in := cfg.Inbound
	onOff := func(name string, on bool) string {
		if on {
			return name + " on"
		}
		return name + " off"
	}
	fmt.Fprintf(w, "inbound checks\t%s, %s, %s (MX port, clients outside the trusted networks)\n",
		onOff("spf", in.SPF), onOff("dkim", in.DKIM), onOff("dmarc", in.DMARC))
	nets := make([]string, 0, len(in.TrustedNetworks))
	for _, p := range in.TrustedNetworks {
		nets = append(nets, p.String())
	}
	trusted := strings.Join(nets, ", ")
	if trusted == "" {
		trusted = "none"
	}
	fmt.Fprintf(w, "trusted networks\t%s (no checks)\n", trusted)
	fmt.Fprintf(w, "dns resolver\t%s\n", resolverText(cfg.DNS.Resolver))
	if a := cfg.TLS.ACME; a != nil {
		var via []string
		if cfg.Listen.HTTPS != "" {
			via = append(via, "TLS-ALPN-01 on "+cfg.Listen.HTTPS)
		}
		if cfg.Listen.HTTP != "" {
			via = append(via, "HTTP-01 on "+cfg.Listen.HTTP)
		}
		fmt.Fprintf(w, "certificates\tACME from %s for %s (%s)\n", a.Directory, strings.Join(a.Hosts, ", "), strings.Join(via, ", "))
	}
}

func resolverText(server string) string {
	if server != "" {
		return server
	}
	r, err := resolver.New(resolver.Options{})
	if err != nil {
		return "system"
	}
	return "system (" + strings.Join(r.Servers(), ", ") + ")"
}
