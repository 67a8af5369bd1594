package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is one problem in the file. Key is a path such as
// "user.anna.aliases[1]"; Line is 0 when the problem has no place.
type Error struct {
	File string
	Line int // 0 when unknown
	Key  string
	Msg  string
}

// Error formats the problem as "file:line: key: sentence".
func (e Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Key + ": " + e.Msg
}

// Errors is every problem found, in file order.
type Errors []Error

// Error joins the problems, one a line.
func (es *Errors) Error() string {
	lines := make([]string, len(*es))
	for i, e := range *es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// decodeError matches the decoder's type errors, which are not ParseErrors:
// `toml: line 4 (last key "user.anna.address"): incompatible types: ...`.
var decodeError = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key ("(?:[^"\\]|\\.)*")\): (.*)$`)

// incompatible matches the decoder's sentence for a value of the wrong type.
var incompatible = regexp.MustCompile(`^incompatible types: TOML value has type (.+); destination has type (.+)$`)

// tomlTypes names the decoder's Go types as the TOML specification does.
var tomlTypes = map[string]string{
	"int64": "an integer", "float64": "a float", "string": "a string", "bool": "a boolean",
	"time.Time": "a date-time", "[]any": "an array", "map[string]any": "a table",
	"integer": "an integer", "float": "a float", "boolean": "a boolean",
	"slice": "an array", "map": "a table",
}

// parseError turns the decoder's error into the file:line: key: sentence
// form of every other problem. The decoder stops at its first error, so
// a file with a syntax error reports only that one.
func parseError(filename string, src string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		key := ""
		if pe.LastKey != "" && pe.Position.Line == 0 {
			key = pe.LastKey
		}
		return &Errors{{File: filename, Line: pe.Position.Line, Key: key, Msg: pe.Message}}
	}
	m := decodeError.FindStringSubmatch(err.Error())
	if m == nil {
		return &Errors{{File: filename, Msg: err.Error()}}
	}
	key, qerr := strconv.Unquote(m[2])
	if qerr != nil {
		key = m[2]
	}
	line, _ := strconv.Atoi(m[1])
	if line == 0 {
		line = newLocator(src).line(key)
	}
	msg := m[3]
	if t := incompatible.FindStringSubmatch(msg); t != nil {
		msg = fmt.Sprintf("is %s, but must be %s", typeName(t[1]), typeName(t[2]))
	}
	return &Errors{{File: filename, Line: line, Key: key, Msg: msg}}
}

func typeName(t string) string {
	if n, ok := tomlTypes[t]; ok {
		return n
	}
	return t
}
