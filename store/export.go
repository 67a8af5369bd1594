package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// digestLen is the length of the digests RemoteFiled and Import keep
// (SHA-256, by every caller): the bbolt key of a filed digest is the
// caller's key, a zero byte and the digest, and only the digest's length
// tells where the key ends.
const digestLen = 32

// Export hands every record of the bbolt store at path to fn, in the order
// Record describes, from one read transaction: one consistent snapshot. It
// opens the file read-only, writes nothing to it, and holds the store's
// lock meanwhile, so a server cannot start on it; ErrInUse while a server
// has it open. An error from fn stops the export and is returned.
func Export(ctx context.Context, path string, fn func(Record) error) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	lock, err := lockStore(path, time.Second)
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	defer lock.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if errors.Is(err, berrors.ErrTimeout) {
		err = ErrInUse
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for _, name := range topBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("export %s: %w: bucket %q missing", path, errCorrupt, name)
			}
		}
		e := exporter{ctx: ctx, tx: tx, fn: fn}
		return e.run()
	})
}

// exporter walks one read transaction.
type exporter struct {
	ctx context.Context
	tx  *bolt.Tx
	fn  func(Record) error
	n   int // records handed out, for checking ctx now and then
}

func (e *exporter) emit(r Record) error {
	if e.n++; e.n%1024 == 0 {
		if err := e.ctx.Err(); err != nil {
			return err
		}
	}
	return e.fn(r)
}

func (e *exporter) run() error {
	meta := &MetaRecord{}
	if v := e.tx.Bucket(bucketMeta).Get(keyValidity); len(v) == 4 {
		meta.LastUIDValidity = binary.BigEndian.Uint32(v)
	}
	if err := e.emit(meta); err != nil {
		return err
	}
	refs, search := e.tx.Bucket(bucketBlobRefs), e.tx.Bucket(bucketBlobSearch)
	err := e.tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
		if len(k) != 32 {
			return fmt.Errorf("body key %x: %w", k, errCorrupt)
		}
		rec := &BodyRecord{Hash: [32]byte(k), Body: v}
		// An id whose data is missing reads as none, as MessagesInPlace
		// reads it: the copy's RefreshMeta computes it again.
		if id := getBlobRef(refs, rec.Hash).searchID; id != 0 {
			rec.Search = search.Get(u64(id))
		}
		return e.emit(rec)
	})
	if err != nil {
		return err
	}
	err = e.tx.Bucket(bucketAccounts).ForEachBucket(func(k []byte) error {
		return e.account(string(k))
	})
	if err != nil {
		return err
	}
	for _, step := range []func() error{e.subscriptions, e.queue, e.memories, e.filed, e.imported, e.cards, e.cache} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// account hands out an account, its folders, their messages and the
// account's per-user \Seen.
func (e *exporter) account(id string) error {
	a, err := getAccount(e.tx, id, false)
	if err != nil {
		return err
	}
	if a == nil || a.names == nil || a.folders == nil {
		return fmt.Errorf("account %q: %w: incomplete", id, errCorrupt)
	}
	rec := &AccountRecord{ID: id, Warned: len(a.b.Get(keyWarned)) == 1, NextFolder: 1}
	if v := a.b.Get(keyNextFolder); len(v) == 8 {
		rec.NextFolder = binary.BigEndian.Uint64(v)
	}
	if err := e.emit(rec); err != nil {
		return err
	}
	type folder struct {
		id  uint64
		rec folderRecord
	}
	var folders []folder
	err = a.folders.ForEach(func(k, v []byte) error {
		f, err := decodeFolder(v)
		if err != nil || len(k) != 8 {
			return fmt.Errorf("account %q folder %x: %w", id, k, errCorrupt)
		}
		folders = append(folders, folder{binary.BigEndian.Uint64(k), f})
		return e.emit(&FolderRecord{
			Account: id, ID: binary.BigEndian.Uint64(k), Name: f.name, SpecialUse: f.specialUse,
			UIDValidity: f.uidValidity, UIDNext: f.uidNext, RecentFrom: f.recentFrom,
		})
	})
	if err != nil {
		return err
	}
	for _, f := range folders {
		if err := e.messages(a, f.id); err != nil {
			return fmt.Errorf("account %q folder %q: %w", id, f.rec.name, err)
		}
	}
	return e.seen(id)
}

func (e *exporter) messages(a *account, folderID uint64) error {
	b := a.messages(folderID)
	if b == nil {
		return fmt.Errorf("%w: no messages bucket", errCorrupt)
	}
	var rec messageRecord
	return b.ForEach(func(k, v []byte) error {
		if len(k) != 4 {
			return fmt.Errorf("UID key %x: %w", k, errCorrupt)
		}
		if err := decodeMessage(v, &rec, false); err != nil {
			return fmt.Errorf("UID %d: %w", binary.BigEndian.Uint32(k), err)
		}
		return e.emit(&MessageRecord{
			Account: a.id, Folder: folderID, UID: binary.BigEndian.Uint32(k), Flags: rec.flags.List(),
			Date: rec.date, Size: rec.size, Hash: rec.hash, Prefix: rec.prefix, Meta: rec.meta,
		})
	})
}

// seen hands out an account's per-user \Seen: keys account NUL folder(8)
// uid(4) viewer.
func (e *exporter) seen(id string) error {
	prefix := []byte(id + "\x00")
	c := e.tx.Bucket(bucketSeen).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		rest := k[len(prefix):]
		if len(rest) < 12 {
			return fmt.Errorf("seen key %x: %w", k, errCorrupt)
		}
		err := e.emit(&SeenRecord{
			Account: id, Folder: binary.BigEndian.Uint64(rest), UID: binary.BigEndian.Uint32(rest[8:]),
			Viewer: string(rest[12:]), Seen: len(v) == 1 && v[0] == 1,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// subscriptions: keys viewer NUL account NUL folder.
func (e *exporter) subscriptions() error {
	return e.tx.Bucket(bucketSubs).ForEach(func(k, v []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 {
			return fmt.Errorf("subscription key %q: %w", k, errCorrupt)
		}
		return e.emit(&SubscriptionRecord{
			Viewer: string(parts[0]), Account: string(parts[1]), Folder: string(parts[2]),
			Subscribed: len(v) == 1 && v[0] == 1,
		})
	})
}

// queue hands out the outbound queue, each message with its body.
func (e *exporter) queue() error {
	bodies := e.tx.Bucket(bucketQueueBody)
	return e.tx.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
		var m QueuedMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("queued message %x: %w", k, err)
		}
		body := bodies.Get(k)
		if body == nil {
			return fmt.Errorf("queued message %d: %w: no body", m.ID, errCorrupt)
		}
		return e.emit(&QueueRecord{Message: m, Body: body})
	})
}

// memories hands out automatic-reply memories and connected-account
// progress, both keyed by the callers.
func (e *exporter) memories() error {
	err := e.tx.Bucket(bucketReplies).ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("automatic-reply memory %q: %w", k, errCorrupt)
		}
		return e.emit(&AutoReplyRecord{Key: k, Last: time.Unix(0, int64(binary.BigEndian.Uint64(v)))})
	})
	if err != nil {
		return err
	}
	return e.tx.Bucket(bucketRemote).ForEach(func(k, v []byte) error {
		if len(v) < 8 {
			return fmt.Errorf("connected-account progress %q: %w", k, errCorrupt)
		}
		return e.emit(&RemoteRecord{Key: k, State: RemoteState{
			UIDValidity: binary.BigEndian.Uint32(v), LastUID: binary.BigEndian.Uint32(v[4:]),
		}})
	})
}

// filed hands out the digests of messages filed from connected accounts:
// keys key NUL digest.
func (e *exporter) filed() error {
	return e.tx.Bucket(bucketRemoteFiled).ForEach(func(k, _ []byte) error {
		cut := len(k) - digestLen - 1
		if cut < 0 || k[cut] != 0 {
			return fmt.Errorf("filed digest %q: %w", k, errCorrupt)
		}
		return e.emit(&RemoteFiledRecord{Key: k[:cut], Digest: k[cut+1:]})
	})
}

// imported hands out the digests of imported messages: keys account NUL
// digest.
func (e *exporter) imported() error {
	return e.tx.Bucket(bucketImported).ForEach(func(k, _ []byte) error {
		account, digest, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return fmt.Errorf("imported digest %q: %w", k, errCorrupt)
		}
		return e.emit(&ImportedRecord{Account: string(account), Digest: digest})
	})
}

// cards hands out the address books' counters, then their cards and
// tombstones.
func (e *exporter) cards() error {
	err := e.tx.Bucket(bucketCardBooks).ForEach(func(k, v []byte) error {
		account, book, ok := bytes.Cut(k, []byte{0})
		if !ok || len(v) != 8 {
			return fmt.Errorf("address book %q: %w", k, errCorrupt)
		}
		return e.emit(&CardBookRecord{Book: Book{Account: string(account), Name: string(book)}, Counter: binary.BigEndian.Uint64(v)})
	})
	if err != nil {
		return err
	}
	return e.tx.Bucket(bucketCards).ForEach(func(k, v []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 {
			return fmt.Errorf("card key %q: %w", k, errCorrupt)
		}
		c, err := decodeCard(string(parts[2]), v)
		if err != nil {
			return err
		}
		c.ETag = ""
		return e.emit(&CardRecord{Book: Book{Account: string(parts[0]), Name: string(parts[1])}, Card: c})
	})
}

func (e *exporter) cache() error {
	return e.tx.Bucket(bucketCache).ForEach(func(k, v []byte) error {
		return e.emit(&CacheRecord{Key: string(k), Data: v})
	})
}
