package policy

import "strings"

// subaddressSep separates a local part from its tag: anna+tag@ is anna@.
const subaddressSep = '+'

// normalize is how the directory spells every address it compares:
// trimmed and lower case, since addresses match case-insensitively.
func normalize(addr string) string {
	return strings.ToLower(strings.TrimSpace(addr))
}

// splitAddress splits an address at its last '@' (a quoted local part may
// hold an '@' of its own). ok is false when either side is empty.
func splitAddress(addr string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

// domainOf returns the normalized domain of an address, "" if it has none.
func domainOf(addr string) string {
	_, domain, ok := splitAddress(normalize(addr))
	if !ok {
		return ""
	}
	return domain
}

// localOf returns the normalized local part of an address, "" if the
// address does not parse.
func localOf(addr string) string {
	local, _, ok := splitAddress(normalize(addr))
	if !ok {
		return ""
	}
	return local
}

// stripSubaddress returns the address without its +tag, and whether it had
// one. The address must already be normalized.
func stripSubaddress(addr string) (string, bool) {
	local, domain, ok := splitAddress(addr)
	if !ok {
		return addr, false
	}
	i := strings.IndexByte(local, subaddressSep)
	if i <= 0 {
		return addr, false
	}
	return local[:i] + "@" + domain, true
}

// validAddress reports whether addr looks like a mailbox address we can
// route: one local part, one domain, no spaces or control characters.
func validAddress(addr string) bool {
	local, domain, ok := splitAddress(addr)
	if !ok {
		return false
	}
	for _, r := range local + domain {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// addrSet is a set of normalized addresses.
type addrSet map[string]struct{}

func (s addrSet) add(addr string) { s[normalize(addr)] = struct{}{} }

func (s addrSet) has(addr string) bool {
	_, ok := s[addr]
	return ok
}

// hasOrParent reports whether addr, or addr without its subaddress, is in s.
// addr must already be normalized.
func (s addrSet) hasOrParent(addr string) bool {
	if s.has(addr) {
		return true
	}
	if base, ok := stripSubaddress(addr); ok {
		return s.has(base)
	}
	return false
}
