package imap

import (
	"context"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/store"
)

// decoded is one message as the store gave it, with its cached envelope and
// structure decoded when the FETCH asks for them.
type decoded struct {
	info   store.MessageInfo
	env    *goimap.Envelope
	bs     goimap.BodyStructure
	cached bool // env and bs came from a usable cache
}

// messageReader is the part of the store readAhead reads from.
type messageReader interface {
	Messages(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, fn func(*store.MessageInfo) error) error
}

// readAheadBatch is how many messages the reader hands over at a time.
const readAheadBatch = 256

// readAhead calls fn for each of the messages that exists, in ascending UID
// order, like store.Messages. The store reads and the decoding run on a
// goroutine of their own, a few batches ahead: on a large FETCH the
// session's goroutine, where go-imap encodes the responses, is what the
// client waits for, and it should do nothing else.
func readAhead(ctx context.Context, st messageReader, acc store.Access, folderID uint64, uids []store.UID, decode bool, fn func(*decoded) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []decoded, 4)
	done := make(chan error, 1)
	go func() {
		defer close(batches)
		done <- readBatches(ctx, st, acc, folderID, uids, decode, batches)
	}()
	for batch := range batches {
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				cancel()
				for range batches {
					// Let the reader see the cancellation and end.
				}
				return err
			}
		}
	}
	return <-done
}

// readBatches is readAhead's reading side.
func readBatches(ctx context.Context, st messageReader, acc store.Access, folderID uint64, uids []store.UID, decode bool, out chan<- []decoded) error {
	zones := make(zoneCache)
	var a arena
	batch := make([]decoded, 0, readAheadBatch)
	send := func() error {
		select {
		case out <- batch:
			batch = make([]decoded, 0, readAheadBatch)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := st.Messages(ctx, acc, folderID, uids, func(m *store.MessageInfo) error {
		d := decoded{info: *m}
		if decode {
			var err error
			d.env, d.bs, err = decodeCacheZones(m.Meta, zones, &a)
			d.cached = err == nil
		}
		batch = append(batch, d)
		if len(batch) == readAheadBatch {
			return send()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = send()
	}
	return err
}
