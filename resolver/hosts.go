package resolver

import (
	"bufio"
	"io"
	"net/netip"
	"os"
	"strings"
)

// readHosts reads a hosts file (/etc/hosts): the system's resolver
// answers names from it before DNS, and so does this one in system mode,
// so a smarthost named there keeps working. A missing file is no hosts.
func readHosts(path string) map[string][]netip.Addr {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseHosts(f)
}

// parseHosts reads "address name [alias...]" lines; "#" starts a comment.
// Names are kept lower case and without a trailing dot.
func parseHosts(r io.Reader) map[string][]netip.Addr {
	out := make(map[string][]netip.Addr)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(fields[0])
		if err != nil || ip.Zone() != "" {
			continue
		}
		for _, name := range fields[1:] {
			name = strings.ToLower(strings.TrimSuffix(name, "."))
			out[name] = append(out[name], ip.Unmap())
		}
	}
	return out
}
