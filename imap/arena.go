package imap

import goimap "github.com/emersion/go-imap/v2"

// arena hands out the objects a decoded cache is made of from slabs, so a
// FETCH of many messages makes a few larger allocations instead of a dozen
// small ones per message. Nothing handed out is reused: a slab lives as long
// as anything in it does.
type arena struct {
	envs    []goimap.Envelope
	addrs   []goimap.Address
	singles []goimap.BodyStructureSinglePart
	exts    []goimap.BodyStructureSinglePartExt
	texts   []goimap.BodyStructureText
}

// maxSlab bounds a slab's length; slabs start small and double up to it, so
// decoding one message costs little more than plain allocation.
const maxSlab = 256

// take returns a zeroed element of slab's current chunk.
func take[T any](slab *[]T) *T {
	return &takeN(slab, 1)[0]
}

// takeN returns n zeroed, contiguous elements of slab's current chunk.
func takeN[T any](slab *[]T, n int) []T {
	if cap(*slab)-len(*slab) < n {
		*slab = make([]T, 0, max(n, min(2*cap(*slab), maxSlab), 4))
	}
	start := len(*slab)
	*slab = (*slab)[:start+n]
	return (*slab)[start : start+n : start+n]
}
