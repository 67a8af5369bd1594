//go:build unix

package imap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
)

// worstSize is the default limits.message_size.
const worstSize = 25 << 20

// deepestMessage is nestedMessage as deep as fits in size bytes.
func deepestMessage(size int) []byte {
	depth := size / 80
	for {
		msg := nestedMessage(depth, size)
		if len(msg) <= size {
			return msg
		}
		depth -= depth / 50
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start, in ms: the
// figure of SPEC §4 (under 1 s each), which wall time on a shared machine
// would blur.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

// BenchmarkMIMEWorstCase times the worst shapes of a 25 MiB message, the
// deepest nesting, the most parts and the most header fields: what delivery does to describe it
// (Analyze), and FETCH BODYSTRUCTURE over a loopback connection.
func BenchmarkMIMEWorstCase(b *testing.B) {
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"nested", deepestMessage(worstSize)},
		{"parts", manyPartsMessage(worstSize)},
		{"headers", headerMessage(worstSize)},
	} {
		b.Run(tc.name+"/delivery", func(b *testing.B) {
			b.SetBytes(int64(len(tc.msg)))
			start := cpuTime()
			for range b.N {
				Analyze(tc.msg)
			}
			reportCPU(b, start)
		})
		b.Run(tc.name+"/fetch-bodystructure", func(b *testing.B) {
			benchFetchStructure(b, tc.msg)
		})
	}
}

func benchFetchStructure(b *testing.B, msg []byte) {
	ts := startServerTB(b)
	if _, err := ts.store.Deliver(context.Background(), &store.Delivery{Body: msg, Targets: []store.Target{{Account: "anna", Folder: "INBOX"}}}); err != nil {
		b.Fatal(err)
	}
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 1<<20)
	r.ReadString('\n')
	fmt.Fprintf(conn, "l LOGIN anna@contoso.test anna-pw\r\ns SELECT INBOX\r\n")
	readUntil(b, r, "s OK")
	b.ResetTimer()
	start := cpuTime()
	for range b.N {
		fmt.Fprintf(conn, "f FETCH 1 BODYSTRUCTURE\r\n")
		if got := readUntil(b, r, "f OK"); got != 1 {
			b.Fatalf("fetched %d", got)
		}
	}
	reportCPU(b, start)
}
