// Package store keeps postkasse's mail in one bbolt file: accounts keyed by
// their permanent id, folders with UIDVALIDITY and UIDNEXT, messages with
// UIDs and flags, single-instance bodies with reference counts, the outbound
// queue, the small memories of the policy (automatic replies sent,
// connected-account progress) and the address books' cards.
//
// Every change is committed (fsynced) before its call returns, and writes
// from concurrent callers share commits. After each commit the store
// publishes the changes, in commit order, to its subscribers.
//
// The store speaks accounts, folders and UIDs. It must not import the SMTP or
// IMAP libraries, the protocol packages, policy or config, and no bbolt type
// crosses its API.
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"postkasse.dev/postkasse/internal/fileowner"
)

// UID is a message's unique identifier within a folder.
type UID = uint32

// Options configure a Store.
type Options struct {
	// Path of the database file; its directory is created if missing.
	Path string
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Analyze, when set, is called once per stored body, outside any
	// transaction, and its result is kept with every copy of the message
	// (the IMAP layer caches the parsed envelope and structure this way).
	Analyze func(body []byte) []byte
	// SearchData, when set, is called once per stored body, outside any
	// transaction, and its result is kept once per body, beside it: stored
	// with the body's first copy and deleted with its last (the IMAP layer
	// keeps its search block and text signature this way, so a delivery
	// to a thousand mailboxes does not write them a thousand times).
	// MessagesInPlace hands it back as MessageInfo.SearchData.
	SearchData func(body []byte) []byte
	// Timeout for acquiring the database file lock; 0 means 5 seconds.
	Timeout time.Duration
	// ObserveCommit, when set, is told how long each commit took (the
	// write transaction and its fsync), for monitoring. It runs on the
	// single writer: it must return at once.
	ObserveCommit func(time.Duration)
}

// Store is an open mail store. It is safe for concurrent use.
type Store struct {
	db      *bolt.DB
	lock    *os.File // held while the store is open; see lockFile
	log     *slog.Logger
	analyze func([]byte) []byte
	search  func([]byte) []byte // Options.SearchData
	observe func(time.Duration) // never nil

	writes  chan *writeOp
	stopped chan struct{}
	closeMu sync.RWMutex
	closed  bool

	subMu   sync.RWMutex
	subs    map[int]func(Change)
	nextSub int
}

// Bucket names at the top level of the database.
var (
	bucketMeta     = []byte("meta")
	bucketBlobs    = []byte("blobs")
	bucketBlobRefs = []byte("blobrefs")
	// bucketBlobSearch holds Options.SearchData's result per body, under
	// an id kept with the body's reference count (blobs.go).
	bucketBlobSearch = []byte("blobsearch")
	bucketAccounts   = []byte("accounts")
	bucketSubs       = []byte("subscriptions")
	bucketSeen       = []byte("seen")
	bucketQueue      = []byte("queue")
	bucketQueueBody  = []byte("queuebody")
	bucketReplies    = []byte("autoreplies")
	bucketRemote     = []byte("remote")
	// bucketRemoteFiled holds, per connected account, the digests of the
	// messages filed from it.
	bucketRemoteFiled = []byte("remotefiled")
	// bucketCards and bucketCardBooks hold the address books (cards.go).
	bucketCards     = []byte("cards")
	bucketCardBooks = []byte("cardbooks")
	// bucketCache holds small named blobs the server keeps across restarts
	// (ACME account key and certificates), see cache.go.
	bucketCache = []byte("cache")
	// bucketImported holds, per account, the digests of the messages
	// `postkasse import` filed, so a second run files nothing twice.
	bucketImported = []byte("imported")
)

var topBuckets = [][]byte{
	bucketMeta, bucketBlobs, bucketBlobRefs, bucketAccounts, bucketSubs,
	bucketSeen, bucketQueue, bucketQueueBody, bucketReplies, bucketRemote, bucketRemoteFiled,
	bucketCards, bucketCardBooks, bucketCache, bucketImported, bucketBlobSearch,
}

// boltAllocSize is bbolt's step for growing the file (its
// DefaultAllocSize, which it does not export).
const boltAllocSize = 16 << 20

// boltOptions are the database options of the store and of its compacted
// copy.
func boltOptions(timeout time.Duration) *bolt.Options {
	return &bolt.Options{
		Timeout:      timeout,
		FreelistType: bolt.FreelistMapType,
		// The free list is written with every commit. Without it, bbolt
		// rebuilds the list at every start by reading the whole file: with
		// 100,000 messages (640 MB) that took 1.5 to 20 s, growing with the
		// store; with it, 60 ms.
		NoFreelistSync: false,
	}
}

// lockStore locks the store whose database is at path: Open and Compact
// must take the very same lock.
func lockStore(path string, timeout time.Duration) (*os.File, error) {
	_, err := os.Stat(path + ".lock")
	fresh := errors.Is(err, os.ErrNotExist)
	f, err := lockFile(path+".lock", timeout)
	if err == nil && fresh {
		err = fileowner.Match(path+".lock", filepath.Dir(path))
		if err != nil {
			f.Close()
		}
	}
	return f, err
}

// Open opens (or creates) the store at opts.Path. It fails with ErrInUse
// when another process has it open for longer than opts.Timeout.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, fmt.Errorf("open store: %w: empty path", ErrInvalid)
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	lock, err := lockStore(opts.Path, timeout)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", opts.Path, err)
	}
	fi, err := os.Stat(opts.Path)
	fresh := errors.Is(err, os.ErrNotExist)
	bopts := boltOptions(timeout)
	// A read transaction blocks a writer that must grow the memory map, and
	// a backup holds one for seconds: map room for the file to double, so
	// deliveries during a backup do not wait for it. Below bbolt's
	// allocation step (16 MiB) a larger map would make the file grow in
	// larger steps; such a store backs up in a blink anyway.
	if fi != nil && fi.Size() >= boltAllocSize {
		bopts.InitialMmapSize = int(2 * fi.Size())
	}
	db, err := bolt.Open(opts.Path, 0o600, bopts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Path, err)
	}
	if fresh {
		// A store created by an administrator's command run as root must
		// still open for the service's user.
		if err := fileowner.Match(opts.Path, filepath.Dir(opts.Path)); err != nil {
			db.Close()
			lock.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range topBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("open store %s: create buckets: %w", opts.Path, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := (&Store{db: db, log: log}).buildMissingIndexes(); err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Path, err)
	}
	observe := opts.ObserveCommit
	if observe == nil {
		observe = func(time.Duration) {}
	}
	s := &Store{
		db:      db,
		lock:    lock,
		log:     log,
		analyze: opts.Analyze,
		search:  opts.SearchData,
		observe: observe,
		writes:  make(chan *writeOp, 1024),
		stopped: make(chan struct{}),
		subs:    make(map[int]func(Change)),
	}
	go s.commitLoop()
	return s, nil
}

// Close waits for pending writes and closes the database.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.writes)
	s.closeMu.Unlock()
	<-s.stopped
	err := s.db.Close()
	s.lock.Close()
	return err
}

// Check verifies the consistency of the database file (bbolt's page
// checks). Tests call it when they end.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}
