package config

import (
	"fmt"
	"net/netip"
)

// proxyProtocol reads listen.proxy_protocol: networks or single addresses,
// as inbound.trusted_networks.
func (v *validator) proxyProtocol(raw *rawConfig, cfg *Config) {
	cfg.ProxyProtocol = []netip.Prefix{}
	for i, s := range raw.Listen.ProxyProtocol {
		p, err := parseNetwork(s)
		if err != nil {
			v.errorf(fmt.Sprintf("listen.proxy_protocol[%d]", i), "%v", err)
			continue
		}
		cfg.ProxyProtocol = append(cfg.ProxyProtocol, p)
	}
}
