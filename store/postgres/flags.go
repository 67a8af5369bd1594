package postgres

import (
	"strings"

	"postkasse.dev/postkasse/store"
)

// System flags are kept as bits in messages.flags (the same bits as the
// bbolt records), keywords in messages.keywords.
const (
	flagSeen int32 = 1 << iota
	flagAnswered
	flagFlagged
	flagDeleted
	flagDraft
)

var systemFlags = []struct {
	name string
	bit  int32
}{
	{store.FlagSeen, flagSeen},
	{store.FlagAnswered, flagAnswered},
	{store.FlagFlagged, flagFlagged},
	{store.FlagDeleted, flagDeleted},
	{store.FlagDraft, flagDraft},
}

// flagSet is a message's flags in stored form. The rules (system flags
// case-insensitive, unknown system flags dropped, keywords unique without
// regard to case, listed in the order set) are package store's.
type flagSet struct {
	bits     int32
	keywords []string
}

func parseFlags(flags []string) flagSet {
	var fs flagSet
	for _, f := range flags {
		fs.add(f)
	}
	return fs
}

func (fs *flagSet) add(f string) {
	for _, sf := range systemFlags {
		if strings.EqualFold(f, sf.name) {
			fs.bits |= sf.bit
			return
		}
	}
	if f == "" || strings.HasPrefix(f, `\`) {
		return // unknown system flags (\Recent among them) are not stored
	}
	for _, k := range fs.keywords {
		if strings.EqualFold(k, f) {
			return
		}
	}
	fs.keywords = append(fs.keywords, f)
}

func (fs *flagSet) remove(f string) {
	for _, sf := range systemFlags {
		if strings.EqualFold(f, sf.name) {
			fs.bits &^= sf.bit
			return
		}
	}
	for i, k := range fs.keywords {
		if strings.EqualFold(k, f) {
			fs.keywords = append(fs.keywords[:i:i], fs.keywords[i+1:]...)
			return
		}
	}
}

func (fs flagSet) list() []string {
	out := make([]string, 0, 2+len(fs.keywords))
	for _, sf := range systemFlags {
		if fs.bits&sf.bit != 0 {
			out = append(out, sf.name)
		}
	}
	return append(out, fs.keywords...)
}

func (fs flagSet) equal(o flagSet) bool {
	if fs.bits != o.bits || len(fs.keywords) != len(o.keywords) {
		return false
	}
	for i := range fs.keywords {
		if fs.keywords[i] != o.keywords[i] {
			return false
		}
	}
	return true
}

// keywordList is fs's keywords for a text[] column: never nil, which pgx
// would store as NULL.
func (fs flagSet) keywordList() []string {
	if fs.keywords == nil {
		return []string{}
	}
	return fs.keywords
}

func (fs flagSet) seen() bool { return fs.bits&flagSeen != 0 }

// withSeen returns fs with \Seen set to seen.
func (fs flagSet) withSeen(seen bool) flagSet {
	out := flagSet{bits: fs.bits &^ flagSeen, keywords: fs.keywords}
	if seen {
		out.bits |= flagSeen
	}
	return out
}

func applyFlags(fs flagSet, op store.FlagOp, change flagSet) flagSet {
	out := flagSet{bits: fs.bits, keywords: append([]string(nil), fs.keywords...)}
	switch op {
	case store.FlagsSet:
		out = flagSet{bits: change.bits, keywords: append([]string(nil), change.keywords...)}
	case store.FlagsAdd:
		out.bits |= change.bits
		for _, k := range change.keywords {
			out.add(k)
		}
	case store.FlagsRemove:
		out.bits &^= change.bits
		for _, k := range change.keywords {
			out.remove(k)
		}
	}
	return out
}

// seenOnly reports whether an operation touches nothing but \Seen.
func seenOnly(op store.FlagOp, change flagSet) bool {
	return op != store.FlagsSet && change.bits == flagSeen && len(change.keywords) == 0
}
