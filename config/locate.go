package config

import (
	"strings"
)

// locator finds the line of a key path in the source, since the TOML
// decoder keeps key positions to itself. It understands table headers,
// array-of-table headers, plain, dotted and quoted keys, multi-line
// strings and arrays spread over several lines (each element gets its own
// path, "key[i]"): enough to point at the line a person has to edit.
type locator struct {
	lines map[string]int // key path -> first line
}

func newLocator(src string) *locator {
	l := &locator{lines: make(map[string]int)}
	var table string
	arrayIndex := make(map[string]int)
	inMultiline := ""
	var arr *arrayScan
	for n, line := range strings.Split(src, "\n") {
		lineNo := n + 1
		t := strings.TrimSpace(line)
		switch {
		case inMultiline != "":
			if strings.Contains(t, inMultiline) {
				inMultiline = ""
			}
			continue
		case arr != nil:
			if !arr.scan(l, t, lineNo) {
				arr = nil
			}
			continue
		case t == "" || t[0] == '#':
			continue
		case strings.HasPrefix(t, "[["):
			name := joinKey(splitKey(strings.Trim(strings.SplitN(t, "]]", 2)[0], "[ ")))
			table = name + "[" + itoa(arrayIndex[name]) + "]"
			arrayIndex[name]++
			l.note(name, lineNo)
			l.note(table, lineNo)
			continue
		case t[0] == '[':
			table = joinKey(splitKey(strings.Trim(strings.SplitN(t, "]", 2)[0], "[ ")))
			l.note(table, lineNo)
			continue
		}
		eq := indexOutsideQuotes(t, '=')
		if eq < 0 {
			continue
		}
		// A dotted key (forward.to = ...) also defines its parents here.
		full := table
		for _, part := range splitKey(strings.TrimSpace(t[:eq])) {
			if full != "" {
				full += "."
			}
			full += quoteKeyPart(part)
			l.note(full, lineNo)
		}
		value := strings.TrimSpace(t[eq+1:])
		for _, q := range []string{`"""`, `'''`} {
			if strings.HasPrefix(value, q) && !strings.Contains(value[3:], q) {
				inMultiline = q
			}
		}
		if strings.HasPrefix(value, "[") {
			arr = &arrayScan{key: full, expect: true}
			if !arr.scan(l, value[1:], lineNo) {
				arr = nil
			}
		}
	}
	return l
}

// arrayScan follows an array value across lines, noting where each of its
// top-level elements starts.
type arrayScan struct {
	key    string
	depth  int  // nesting inside the array itself
	index  int  // next element
	expect bool // the next non-blank character starts an element
}

// scan reads one line (after the opening bracket, on the first) and reports
// whether the array continues on the next line.
func (a *arrayScan) scan(l *locator, s string, lineNo int) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			continue
		case c == '#':
			return true
		case c == '"' || c == '\'':
			if a.expect && a.depth == 0 {
				a.element(l, lineNo)
			}
			i = skipString(s, i)
		case c == '[' || c == '{':
			if a.expect && a.depth == 0 {
				a.element(l, lineNo)
			}
			a.depth++
		case c == ']' || c == '}':
			if a.depth == 0 {
				return false
			}
			a.depth--
		case c == ',':
			if a.depth == 0 {
				a.expect = true
			}
		default:
			if a.expect && a.depth == 0 {
				a.element(l, lineNo)
			}
		}
	}
	return true
}

func (a *arrayScan) element(l *locator, lineNo int) {
	l.note(a.key+"["+itoa(a.index)+"]", lineNo)
	a.index++
	a.expect = false
}

// skipString returns the index of the quote that closes the string opening
// at s[i], or the end of the line.
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case q == '"' && s[j] == '\\':
			j++
		case s[j] == q:
			return j
		}
	}
	return len(s)
}

func (l *locator) note(path string, line int) {
	if _, ok := l.lines[path]; !ok {
		l.lines[path] = line
	}
}

// line returns the line of a key path such as `user.anna.aliases[1]`, or
// of its nearest enclosing key or table; 0 when nothing matches.
func (l *locator) line(path string) int {
	for p := path; p != ""; {
		if n, ok := l.lines[p]; ok {
			return n
		}
		if i := strings.LastIndexAny(p, ".["); i > 0 {
			p = p[:i]
		} else {
			break
		}
	}
	return 0
}

// splitKey splits a dotted TOML key, honouring quotes.
func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

// joinKey joins key parts the way toml.Key.String does, quoting parts that
// are not bare keys.
func joinKey(parts []string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = quoteKeyPart(p)
	}
	return strings.Join(out, ".")
}

func quoteKeyPart(p string) string {
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return `"` + strings.ReplaceAll(p, `"`, `\"`) + `"`
		}
	}
	if p == "" {
		return `""`
	}
	return p
}

func indexOutsideQuotes(s string, ch byte) int {
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == ch:
			return i
		}
	}
	return -1
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
