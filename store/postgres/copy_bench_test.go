package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// benchMessages and benchBodySize make the store BenchmarkCopyStore
// copies: 20,000 messages of 4 KiB, 80 MiB of bodies, in 10 folders.
const (
	benchMessages = 20000
	benchBodySize = 4 << 10
)

// syntheticStore writes a bbolt store of benchMessages distinct messages
// with a bbolt Loader, which is the quickest way to make one.
func syntheticStore(b *testing.B, path string) {
	b.Helper()
	ctx := context.Background()
	l, err := store.NewLoader(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	put := func(r store.Record) {
		if err := l.Put(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	put(&store.MetaRecord{LastUIDValidity: 100})
	hashes := make([][32]byte, benchMessages)
	body := make([]byte, benchBodySize)
	for i := range hashes {
		copy(body, fmt.Sprintf("Subject: %d\r\n\r\n", i))
		hashes[i] = sha256.Sum256(body)
		put(&store.BodyRecord{Hash: hashes[i], Body: body})
	}
	put(&store.AccountRecord{ID: "anna", NextFolder: 11})
	const folders = 10
	for f := range uint64(folders) {
		put(&store.FolderRecord{Account: "anna", ID: f + 1, Name: fmt.Sprint("F", f), UIDValidity: uint32(f + 1), UIDNext: benchMessages/folders + 1, RecentFrom: 1})
	}
	date := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i, h := range hashes {
		put(&store.MessageRecord{Account: "anna", Folder: uint64(i%folders) + 1, UID: store.UID(i/folders + 1),
			Flags: []string{store.FlagSeen}, Date: date, Size: benchBodySize, Hash: h})
	}
	if err := l.Commit(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCopyStore copies a bbolt store of 20,000 messages into
// PostgreSQL and back into a new bbolt file, each way with its checks.
// The test cluster runs with fsync off: the figures are the copy's own
// work, not a disk's.
func BenchmarkCopyStore(b *testing.B) {
	ctx := context.Background()
	src := filepath.Join(b.TempDir(), "src.db")
	syntheticStore(b, src)
	for b.Loop() {
		dsn := pgtest.DB(b, cluster)
		start := time.Now()
		l, err := NewLoader(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		if err := copyRecords(ctx, boltExport(src), l.Put, l.Commit, l.Abort); err != nil {
			b.Fatal(err)
		}
		toPG := time.Since(start)
		start = time.Now()
		bl, err := store.NewLoader(ctx, filepath.Join(b.TempDir(), "back.db"))
		if err != nil {
			b.Fatal(err)
		}
		if err := copyRecords(ctx, pgExport(dsn), bl.Put, bl.Commit, bl.Abort); err != nil {
			b.Fatal(err)
		}
		toBbolt := time.Since(start)
		b.ReportMetric(benchMessages/toPG.Seconds(), "msgs/s-to-pg")
		b.ReportMetric(benchMessages/toBbolt.Seconds(), "msgs/s-to-bbolt")
	}
}
