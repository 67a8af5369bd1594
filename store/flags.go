package store

import "strings"

// The system flags' bits in FlagSet.Bits; keywords are kept as strings.
// Both backends store these bits, so they never change.
const (
	FlagBitSeen uint16 = 1 << iota
	FlagBitAnswered
	FlagBitFlagged
	FlagBitDeleted
	FlagBitDraft
)

// The system flags' spellings. \Recent is not stored: it is session state.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

var systemFlags = []struct {
	name string
	bit  uint16
}{
	{FlagSeen, FlagBitSeen},
	{FlagAnswered, FlagBitAnswered},
	{FlagFlagged, FlagBitFlagged},
	{FlagDeleted, FlagBitDeleted},
	{FlagDraft, FlagBitDraft},
}

// FlagSet is a message's flags in stored form, the same in every backend.
// The rules are here once: system flags match without regard to case,
// unknown system flags (\Recent among them) are not stored, and keywords
// are unique without regard to case, listed in the order they were set.
type FlagSet struct {
	Bits     uint16
	Keywords []string
}

// ParseFlags returns the stored form of flags.
func ParseFlags(flags []string) FlagSet {
	var fs FlagSet
	for _, f := range flags {
		fs.Add(f)
	}
	return fs
}

// Add sets flag f.
func (fs *FlagSet) Add(f string) {
	for _, sf := range systemFlags {
		if strings.EqualFold(f, sf.name) {
			fs.Bits |= sf.bit
			return
		}
	}
	if f == "" || strings.HasPrefix(f, `\`) {
		return // unknown system flags (\Recent among them) are not stored
	}
	for _, k := range fs.Keywords {
		if strings.EqualFold(k, f) {
			return
		}
	}
	fs.Keywords = append(fs.Keywords, f)
}

// Remove clears flag f.
func (fs *FlagSet) Remove(f string) {
	for _, sf := range systemFlags {
		if strings.EqualFold(f, sf.name) {
			fs.Bits &^= sf.bit
			return
		}
	}
	for i, k := range fs.Keywords {
		if strings.EqualFold(k, f) {
			fs.Keywords = append(fs.Keywords[:i:i], fs.Keywords[i+1:]...)
			return
		}
	}
}

// List returns the flags by their names: system flags, then keywords;
// nil for none.
func (fs FlagSet) List() []string {
	if fs.Bits == 0 && len(fs.Keywords) == 0 {
		return nil
	}
	out := make([]string, 0, 2+len(fs.Keywords))
	for _, sf := range systemFlags {
		if fs.Bits&sf.bit != 0 {
			out = append(out, sf.name)
		}
	}
	return append(out, fs.Keywords...)
}

// Equal reports whether fs and o are the same flags in the same order.
func (fs FlagSet) Equal(o FlagSet) bool {
	if fs.Bits != o.Bits || len(fs.Keywords) != len(o.Keywords) {
		return false
	}
	for i := range fs.Keywords {
		if fs.Keywords[i] != o.Keywords[i] {
			return false
		}
	}
	return true
}

// Seen reports whether \Seen is set.
func (fs FlagSet) Seen() bool { return fs.Bits&FlagBitSeen != 0 }

// WithSeen returns fs with \Seen set to seen (the keywords are shared).
func (fs FlagSet) WithSeen(seen bool) FlagSet {
	fs.Bits &^= FlagBitSeen
	if seen {
		fs.Bits |= FlagBitSeen
	}
	return fs
}

// ApplyFlags returns fs after op with change (FlagsSet, FlagsAdd,
// FlagsRemove); fs itself is left as it was.
func ApplyFlags(fs FlagSet, op FlagOp, change FlagSet) FlagSet {
	out := FlagSet{Bits: fs.Bits, Keywords: append([]string(nil), fs.Keywords...)}
	switch op {
	case FlagsSet:
		out = FlagSet{Bits: change.Bits, Keywords: append([]string(nil), change.Keywords...)}
	case FlagsAdd:
		out.Bits |= change.Bits
		for _, k := range change.Keywords {
			out.Add(k)
		}
	case FlagsRemove:
		out.Bits &^= change.Bits
		for _, k := range change.Keywords {
			out.Remove(k)
		}
	}
	return out
}

// SeenOnly reports whether an operation touches nothing but \Seen.
func SeenOnly(op FlagOp, change FlagSet) bool {
	return op != FlagsSet && change.Bits == FlagBitSeen && len(change.Keywords) == 0
}
