package imap

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
)

// nestedMessage is a message nested depth deep in multiparts, whose
// innermost text part is padded to make the message about size bytes.
func nestedMessage(depth, size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nSubject: deep\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\n")
	closing := 0
	for i := range depth {
		closing += len(fmt.Sprintf("--b%d--\r\n", i))
	}
	line := strings.Repeat("x", 76) + "\r\n"
	for b.Len()+len(line)+closing+6 < size {
		b.WriteString(line)
	}
	b.WriteString("leaf\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.Bytes()
}

// manyPartsMessage is a flat multipart of as many small parts as fit in
// size bytes.
func manyPartsMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")
	for b.Len()+len("--b\r\n\r\nx\r\n--b--\r\n") < size {
		b.WriteString("--b\r\n\r\nx\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.Bytes()
}

// costModel is what describing a message costs on this machine in this
// build (race detector, fuzzing instrumentation), measured on linear
// shapes: a flat text message, and one with more parts than are
// described. A message of n bytes may cost four times what its size and
// the most parts cost together: the quadratic cost of nested readers is
// hundreds of times that (4,000 levels in 281 KB took 11.6 s).
type costModel struct {
	flat      time.Duration // describing flatMessage(flatSize)
	manyParts time.Duration // describing manyPartsMessage(manySize)
}

const (
	flatSize = 1 << 20
	manySize = 200 << 10 // over mimetree.MaxParts parts
)

func measureCostModel() costModel {
	return costModel{
		flat:      describeCost(flatMessage(flatSize), 0),
		manyParts: describeCost(manyPartsMessage(manySize), 0),
	}
}

func (m costModel) budget(n int) time.Duration {
	return 10*time.Millisecond + 4*(m.manyParts+m.flat*time.Duration(n)/flatSize)
}

// flatMessage is a single text part of size bytes.
func flatMessage(size int) []byte {
	return nestedMessage(0, size)
}

// describeCost is the least time of up to three runs (fewer once one is
// within budget) of everything the server does with a message's
// structure: the delivery-time cache, a section of its deepest part, and
// the text SEARCH reads.
func describeCost(msg []byte, budget time.Duration) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		Analyze(msg)
		src := &sections{msg: msg}
		src.body(&goimap.FetchItemBodySection{Part: deepestPath(src)})
		src.body(&goimap.FetchItemBodySection{Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"From"}})
		bodyText(msg)
		best = min(best, time.Since(start))
		if best <= budget {
			break
		}
	}
	return best
}

// deepestPath is the section path down the last child at every level.
func deepestPath(src *sections) []int {
	var path []int
	for p := src.tree(); len(p.Children) > 0; p = p.Children[len(p.Children)-1] {
		if len(p.Children) > 1 || len(path) == 0 {
			path = append(path, len(p.Children))
		} else {
			path = append(path, 1)
		}
	}
	return path
}

// headerMessage is a message whose header is size bytes of short fields.
func headerMessage(size int) []byte {
	return append(bytes.Repeat([]byte("To: a@b\r\n"), size/9), "\r\nbody\r\n"...)
}

// FuzzAnalyzeCost fails on time, not only on crashes: the message is
// prefix, head repeated n times, middle, tail repeated n times (so the
// fuzzer reaches deep nesting and many parts from a few bytes), and
// describing it must stay within costBudget.
func FuzzAnalyzeCost(f *testing.F) {
	f.Add([]byte("Subject: x\r\n"), []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"), []byte("\r\nleaf\r\n"), []byte("--b--\r\n"), uint16(2000))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n"), []byte("--b\r\n\r\nx\r\n"), []byte("--b--\r\n"), []byte(""), uint16(20000))
	f.Add([]byte(""), []byte("Content-Type: message/rfc822\r\n\r\n"), []byte("\r\ninner\r\n"), []byte(""), uint16(3000))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=-\r\n\r\n"), []byte("---\r\n"), []byte("x"), []byte("-----\r\n"), uint16(10000))
	f.Add([]byte(""), []byte("X: y\r\n"), []byte("\r\n"), []byte(""), uint16(60000))
	model := measureCostModel()
	f.Fuzz(func(t *testing.T, prefix, head, middle, tail []byte, n uint16) {
		size := len(prefix) + len(middle) + int(n)*(len(head)+len(tail))
		if size > 2<<20 {
			return
		}
		msg := bytes.Join([][]byte{prefix, bytes.Repeat(head, int(n)), middle, bytes.Repeat(tail, int(n))}, nil)
		if budget := model.budget(len(msg)); describeCost(msg, budget) > budget {
			t.Fatalf("%d bytes cost %v, budget %v (%+v)", len(msg), describeCost(msg, 0), budget, model)
		}
	})
}

// TestDescribeCostLinear is the cost bound on the shapes of SPEC §4 at
// sizes the quadratic parser could not answer.
func TestDescribeCostLinear(t *testing.T) {
	model := measureCostModel()
	for _, msg := range [][]byte{nestedMessage(1000, 0), nestedMessage(8000, 0), nestedMessage(50000, 0), manyPartsMessage(1 << 20), headerMessage(4 << 20)} {
		// The best of three runs: a busy machine can stall any one of
		// them, while a quadratic parser is over budget every time.
		budget := model.budget(len(msg))
		if !withinBudget(msg, budget, 3) {
			t.Errorf("%d bytes cost %v, budget %v (%+v)", len(msg), describeCost(msg, 0), budget, model)
		}
	}
}

// withinBudget reports whether describing msg stays within budget in any
// of tries runs.
func withinBudget(msg []byte, budget time.Duration, tries int) bool {
	for range tries {
		if describeCost(msg, budget) <= budget {
			return true
		}
	}
	return false
}

// TestDeepCacheReadsBack: the cache of a message nested past the limit,
// in multiparts or in message/rfc822 parts, decodes, so no FETCH has to
// parse the message again.
func TestDeepCacheReadsBack(t *testing.T) {
	t.Parallel()
	rfc822 := bytes.Repeat([]byte("Content-Type: message/rfc822\r\n\r\n"), 1000)
	for _, msg := range [][]byte{nestedMessage(1000, 0), rfc822, manyPartsMessage(200 << 10)} {
		if _, _, err := decodeCache(Analyze(msg)); err != nil {
			t.Errorf("%.40q: %v", msg, err)
		}
	}
}
