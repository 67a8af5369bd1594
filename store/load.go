package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"postkasse.dev/postkasse/internal/fileowner"
)

// loadTxSize is about how many bytes one transaction of a load holds
// before it is committed: large enough that fsyncs are few, small enough
// that a store of any size loads in bounded memory.
const loadTxSize = 32 << 20

// bucketLoadSearch holds, during a load, the search data of each body
// (keyed by hash) until the body's first message comes: only then does it
// take its id in bucketBlobSearch, so that ids ascend with the messages of
// a folder, as delivery gives them (blobs.go), not with the bodies' hashes.
// Commit deletes the bucket, and with it the search data of bodies no
// message uses.
var bucketLoadSearch = []byte("loadsearch")

// Loader writes the records of an Export (of either backend) into a new
// bbolt store. It writes into a file beside the target and gives it the
// target's name only in Commit, once the whole store is written, indexed
// and verified: a load that fails or is abandoned leaves no store behind.
// A Loader is used by one goroutine.
type Loader struct {
	path string
	tmp  string
	lock *os.File // the target's store lock, held throughout
	db   *bolt.DB
	tx   *bolt.Tx
	size int // bytes put in tx

	meta     uint32 // the highest UIDVALIDITY seen
	queueMax uint64
	folders  map[folderKey]*folderCount
	usage    map[string]int64
}

// folderCount is what a folder holds, counted as its messages arrive.
type folderCount struct {
	messages, unseen uint32
	size             int64
}

// NewLoader starts loading a new store at path. It refuses a path where a
// file is already (a copy goes into a new store, never over
// one: ErrNotEmpty), and holds the store's lock until Commit or Abort, so a server
// cannot start on the path meanwhile.
func NewLoader(ctx context.Context, path string) (*Loader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("load %s: %w: the file exists, a copy goes into a new one", path, ErrNotEmpty)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	lock, err := lockStore(path, time.Second)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	l := &Loader{path: path, tmp: path + ".loading", lock: lock,
		folders: make(map[folderKey]*folderCount), usage: make(map[string]int64)}
	os.Remove(l.tmp) // left by a load that was killed
	if l.db, err = bolt.Open(l.tmp, 0o600, boltOptions(time.Second)); err != nil {
		lock.Close()
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if err := l.begin(); err != nil {
		l.Abort()
		return nil, err
	}
	for _, name := range append(topBuckets[:len(topBuckets):len(topBuckets)], bucketLoadSearch) {
		if _, err := l.tx.CreateBucket(name); err != nil {
			l.Abort()
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
	}
	return l, nil
}

func (l *Loader) begin() error {
	tx, err := l.db.Begin(true)
	if err != nil {
		return fmt.Errorf("load %s: %w", l.path, err)
	}
	l.tx, l.size = tx, 0
	return nil
}

// Put stores one record. Records must come in the order Record describes.
func (l *Loader) Put(ctx context.Context, r Record) error {
	if l.tx == nil {
		return fmt.Errorf("load %s: %w", l.path, ErrClosed)
	}
	if l.size >= loadTxSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.tx.Commit(); err != nil {
			l.tx = nil
			return fmt.Errorf("load %s: %w", l.path, err)
		}
		if err := l.begin(); err != nil {
			return err
		}
	}
	n, err := l.put(r)
	l.size += n
	if err != nil {
		return fmt.Errorf("load %s: %T: %w", l.path, r, err)
	}
	return nil
}

// put stores a record in the current transaction and returns about how
// many bytes it took. bbolt keeps the slices it is given until the
// commit: every key and value here is the loader's own copy.
func (l *Loader) put(r Record) (int, error) {
	switch r := r.(type) {
	case *MetaRecord:
		l.meta = max(l.meta, r.LastUIDValidity)
		return 4, nil
	case *BodyRecord:
		return len(r.Body) + len(r.Search), l.putBody(r)
	case *AccountRecord:
		return 64, l.putAccount(r)
	case *FolderRecord:
		return 64, l.putFolder(r)
	case *MessageRecord:
		return 128 + len(r.Prefix) + len(r.Meta), l.putMessage(r)
	case *SeenRecord:
		return 32, setSeenOverride(l.tx, r.Account, r.Folder, r.UID, r.Viewer, r.Seen)
	case *SubscriptionRecord:
		v := []byte{0}
		if r.Subscribed {
			v[0] = 1
		}
		return 32, l.tx.Bucket(bucketSubs).Put(subscriptionKey(r.Viewer, r.Account, r.Folder), v)
	case *QueueRecord:
		return len(r.Body), l.putQueued(r)
	default:
		return l.putMemory(r)
	}
}

// putMemory stores the records kept as they are: memories, address books
// and the cache.
func (l *Loader) putMemory(r Record) (int, error) {
	switch r := r.(type) {
	case *AutoReplyRecord:
		return 32, l.tx.Bucket(bucketReplies).Put(bytes.Clone(r.Key), u64(uint64(r.Last.UnixNano())))
	case *RemoteRecord:
		return 32, putRemoteState(l.tx, string(r.Key), r.State)
	case *RemoteFiledRecord:
		// Only the digest's length tells where the key ends (Export).
		if len(r.Digest) != digestLen {
			return 0, fmt.Errorf("%w: digest of %d bytes", ErrInvalid, len(r.Digest))
		}
		return 64, l.tx.Bucket(bucketRemoteFiled).Put(remoteDigestKey(string(r.Key), r.Digest), []byte{1})
	case *ImportedRecord:
		return 64, l.tx.Bucket(bucketImported).Put(append([]byte(r.Account+"\x00"), r.Digest...), []byte{1})
	case *CardBookRecord:
		return 32, l.tx.Bucket(bucketCardBooks).Put(r.Book.key(), u64(r.Counter))
	case *CardRecord:
		c := r.Card
		key := append(r.Book.prefix(), c.Name...)
		return len(c.Data), l.tx.Bucket(bucketCards).Put(key, encodeCard(c.Stamp, c.Modified, c.Deleted, c.Data))
	case *CacheRecord:
		return len(r.Data), l.tx.Bucket(bucketCache).Put([]byte(r.Key), bytes.Clone(r.Data))
	}
	return 0, fmt.Errorf("%w: unknown record", ErrInvalid)
}

func (l *Loader) putAccount(r *AccountRecord) error {
	a, err := getAccount(l.tx, r.ID, true)
	if err != nil {
		return err
	}
	if err := a.b.Put(keyNextFolder, u64(r.NextFolder)); err != nil {
		return err
	}
	l.usage[r.ID] = 0
	if r.Warned {
		return a.b.Put(keyWarned, []byte{1})
	}
	return nil
}

// putFolder stores a folder with empty counters, which Commit sets; its
// index is built when the loaded store is first opened (indexed false).
func (l *Loader) putFolder(r *FolderRecord) error {
	a, err := getAccount(l.tx, r.Account, false)
	if err != nil {
		return err
	}
	if a == nil {
		return fmt.Errorf("folder %q of account %q, which came before: %w", r.Name, r.Account, ErrNotFound)
	}
	if r.Name == "" || a.folderID(r.Name) != 0 || a.folders.Get(u64(r.ID)) != nil {
		return fmt.Errorf("folder %q (%d): %w", r.Name, r.ID, ErrFolderExists)
	}
	f := folderRecord{name: r.Name, specialUse: r.SpecialUse, uidValidity: r.UIDValidity, uidNext: r.UIDNext, recentFrom: r.RecentFrom}
	if err := a.putFolder(r.ID, &f); err != nil {
		return err
	}
	if err := a.names.Put([]byte(r.Name), u64(r.ID)); err != nil {
		return err
	}
	if _, err := a.b.CreateBucket(messageBucketKey(r.ID)); err != nil {
		return err
	}
	l.meta = max(l.meta, r.UIDValidity)
	l.folders[folderKey{r.Account, r.ID}] = &folderCount{}
	return nil
}

// putBody stores a body, and its search data until its first message
// comes (bucketLoadSearch).
func (l *Loader) putBody(r *BodyRecord) error {
	if err := l.tx.Bucket(bucketBlobs).Put(bytes.Clone(r.Hash[:]), bytes.Clone(r.Body)); err != nil {
		return err
	}
	if r.Search == nil {
		return nil
	}
	return l.tx.Bucket(bucketLoadSearch).Put(bytes.Clone(r.Hash[:]), bytes.Clone(r.Search))
}

// putMessage stores a message and counts a reference to its body, which
// must have come before it. The body's first message gives the body's
// search data its id, as refBlob does for a delivery; every message's
// record names that id.
func (l *Loader) putMessage(r *MessageRecord) error {
	count := l.folders[folderKey{r.Account, r.Folder}]
	if count == nil {
		return fmt.Errorf("message %d of folder %d of %q: %w", r.UID, r.Folder, r.Account, ErrNoFolder)
	}
	a, err := getAccount(l.tx, r.Account, false)
	if err != nil {
		return err
	}
	if l.tx.Bucket(bucketBlobs).Get(r.Hash[:]) == nil {
		return fmt.Errorf("message %d of %q: body %x: %w", r.UID, r.Account, r.Hash[:6], ErrNotFound)
	}
	refs := l.tx.Bucket(bucketBlobRefs)
	ref := getBlobRef(refs, r.Hash)
	if ref.refs == 0 {
		if search := l.tx.Bucket(bucketLoadSearch).Get(r.Hash[:]); search != nil {
			if ref.searchID, err = putSearchData(l.tx, bytes.Clone(search)); err != nil {
				return err
			}
		}
	}
	ref.refs++
	if err := putBlobRef(refs, r.Hash, ref); err != nil {
		return err
	}
	rec := messageRecord{flags: ParseFlags(r.Flags), date: r.Date, size: r.Size, hash: r.Hash, prefix: r.Prefix, meta: r.Meta, searchID: ref.searchID}
	if err := a.messages(r.Folder).Put(u32(r.UID), rec.encode()); err != nil {
		return err
	}
	count.messages++
	count.size += r.Size
	if rec.flags.Bits&FlagBitSeen == 0 {
		count.unseen++
	}
	l.usage[r.Account] += r.Size
	return nil
}

func (l *Loader) putQueued(r *QueueRecord) error {
	m := r.Message
	if err := putQueued(l.tx.Bucket(bucketQueue), &m); err != nil {
		return err
	}
	l.queueMax = max(l.queueMax, m.ID)
	return l.tx.Bucket(bucketQueueBody).Put(u64(m.ID), bytes.Clone(r.Body))
}

// Commit finishes the store: sets the counters from what was loaded,
// drops bodies no message uses, builds the folders' indexes, verifies the
// whole store (Verify, bodies' hashes included) and only then gives it the
// target's name, durably. On failure nothing is left at the target.
func (l *Loader) Commit(ctx context.Context) error {
	if l.tx == nil {
		return fmt.Errorf("load %s: %w", l.path, ErrClosed)
	}
	err := l.finish()
	if err == nil {
		err = l.tx.Commit()
	} else {
		l.tx.Rollback()
	}
	l.tx = nil
	if cerr := l.db.Close(); err == nil {
		err = cerr
	}
	l.db = nil
	if err == nil {
		err = l.check(ctx)
	}
	if err == nil {
		err = fileowner.Match(l.tmp, filepath.Dir(l.path))
	}
	if err == nil {
		err = os.Rename(l.tmp, l.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(l.path))
	}
	os.Remove(l.tmp)
	os.Remove(l.tmp + ".lock")
	l.lock.Close()
	if err != nil {
		return fmt.Errorf("load %s: %w", l.path, err)
	}
	return nil
}

// finish writes what follows from the records: counters, the store's
// UIDVALIDITY and queue sequences; and drops unused bodies and the search
// data no message came for.
func (l *Loader) finish() error {
	if err := l.tx.DeleteBucket(bucketLoadSearch); err != nil {
		return err
	}
	for k, c := range l.folders {
		a, err := getAccount(l.tx, k.account, false)
		if err != nil {
			return err
		}
		f, err := a.folder(k.folder)
		if err != nil {
			return err
		}
		f.messages, f.unseen, f.size = c.messages, c.unseen, c.size
		if err := a.putFolder(k.folder, &f); err != nil {
			return err
		}
	}
	for id, u := range l.usage {
		a, err := getAccount(l.tx, id, false)
		if err != nil {
			return err
		}
		if err := a.b.Put(keyUsage, u64(uint64(u))); err != nil {
			return err
		}
	}
	if err := l.tx.Bucket(bucketMeta).Put(keyValidity, u32(l.meta)); err != nil {
		return err
	}
	if err := l.tx.Bucket(bucketQueue).SetSequence(l.queueMax); err != nil {
		return err
	}
	// A body its source kept without a message (it should not have) is
	// not carried on.
	refs := l.tx.Bucket(bucketBlobRefs)
	c := l.tx.Bucket(bucketBlobs).Cursor()
	for k, _ := c.First(); k != nil; {
		if refs.Get(k) != nil {
			k, _ = c.Next()
			continue
		}
		if err := c.Delete(); err != nil {
			return err
		}
		k, _ = c.Seek(k)
	}
	return nil
}

// check opens the loaded file as a store, which builds every folder's
// index, and verifies it.
func (l *Loader) check(ctx context.Context) error {
	s, err := Open(ctx, Options{Path: l.tmp, Timeout: time.Second})
	if err != nil {
		return err
	}
	err = s.Verify(ctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("check of the copy: %w", err)
	}
	return nil
}

// Abort abandons the load: nothing is left at the target. It may be
// called after Commit, and then does nothing.
func (l *Loader) Abort() {
	if l.db == nil {
		return
	}
	if l.tx != nil {
		l.tx.Rollback()
		l.tx = nil
	}
	l.db.Close()
	l.db = nil
	os.Remove(l.tmp)
	os.Remove(l.tmp + ".lock")
	l.lock.Close()
}
