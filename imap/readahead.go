package imap

import (
	"context"

	goimap "github.com/emersion/go-imap/v2"

	"postkasse.dev/postkasse/store"
)

// decoded is one message as the store gave it, with its cached envelope and
// structure decoded when the FETCH asks for them, and its text when the
// FETCH needs that.
type decoded struct {
	info   store.MessageInfo
	env    *goimap.Envelope
	bs     goimap.BodyStructure
	cached bool // env and bs came from a usable cache
	body   []byte
	// gone is set when the message was expunged between reading its
	// record and its text.
	gone bool
}

// messageReader is the part of the store readAhead reads from.
type messageReader interface {
	Messages(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, fn func(*store.MessageInfo) error) error
	Bodies(ctx context.Context, acc store.Access, folderID uint64, uids []store.UID, fn func(uid store.UID, body []byte) error) error
}

// readPlan says what readAhead reads besides each message's record.
type readPlan struct {
	decode bool // decode the cached envelope and structure
	// body, when set, picks the messages whose text is read too.
	body func(*decoded) bool
}

// readAheadBatch is how many messages the reader hands over at a time, and
// readAheadBytes how much message text at most: the batches in flight
// bound what a FETCH of large messages holds in memory.
const (
	readAheadBatch = 256
	readAheadBytes = 1 << 20
)

// readAhead calls fn for each of the messages of uids that exists, in
// ascending UID order, like store.Messages. The store reads (records and,
// when the plan asks, message text) and the decoding run on a goroutine of
// their own, a few batches ahead: on a large FETCH the session's goroutine,
// where go-imap encodes the responses, is what the client waits for, and
// it should do nothing else.
func readAhead(ctx context.Context, st messageReader, acc store.Access, folderID uint64, uids []store.UID, plan readPlan, fn func(*decoded) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []decoded, 4)
	done := make(chan error, 1)
	go func() {
		defer close(batches)
		done <- readBatches(ctx, st, acc, folderID, uids, plan, batches)
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

// readBatches is readAhead's reading side. With message text to read, it
// reads the records of one batch of UIDs at a time and then their text,
// each read a store transaction of its own: a read nested in another could
// wait forever on a writer queued between the two.
func readBatches(ctx context.Context, st messageReader, acc store.Access, folderID uint64, uids []store.UID, plan readPlan, out chan<- []decoded) error {
	zones := make(zoneCache)
	var a arena
	send := func(batch []decoded) error {
		select {
		case out <- batch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if plan.body == nil {
		// Records only: one read of them all, handed over in batches.
		batch := make([]decoded, 0, readAheadBatch)
		err := st.Messages(ctx, acc, folderID, uids, func(m *store.MessageInfo) error {
			batch = append(batch, decodeRecord(m, plan, zones, &a))
			if len(batch) < readAheadBatch {
				return nil
			}
			full := batch
			batch = make([]decoded, 0, readAheadBatch)
			return send(full)
		})
		if err == nil && len(batch) > 0 {
			err = send(batch)
		}
		return err
	}
	for len(uids) > 0 {
		chunk := uids[:min(len(uids), readAheadBatch)]
		uids = uids[len(chunk):]
		batch := make([]decoded, 0, len(chunk))
		err := st.Messages(ctx, acc, folderID, chunk, func(m *store.MessageInfo) error {
			batch = append(batch, decodeRecord(m, plan, zones, &a))
			return nil
		})
		if err != nil {
			return err
		}
		if err := readBodies(ctx, st, acc, folderID, batch, plan.body, send); err != nil {
			return err
		}
	}
	return nil
}

// decodeRecord is one message's record, with its cache decoded when the
// plan asks.
func decodeRecord(m *store.MessageInfo, plan readPlan, zones zoneCache, a *arena) decoded {
	d := decoded{info: *m}
	if plan.decode {
		var err error
		d.env, d.bs, err = decodeCacheZones(m.Meta, zones, a)
		d.cached = err == nil
	}
	return d
}

// readBodies reads the text of the messages of batch that want picks and
// sends the batch on in parts of at most readAheadBytes of text (a single
// larger message goes alone), one store read per part.
func readBodies(ctx context.Context, st messageReader, acc store.Access, folderID uint64, batch []decoded, want func(*decoded) bool, send func([]decoded) error) error {
	for len(batch) > 0 {
		n, size := 0, int64(0)
		var uids []store.UID
		for ; n < len(batch); n++ {
			d := &batch[n]
			if !want(d) {
				continue
			}
			if len(uids) > 0 && size+d.info.Size > readAheadBytes {
				break
			}
			uids, size = append(uids, d.info.UID), size+d.info.Size
		}
		part := batch[:n]
		batch = batch[n:]
		if len(uids) > 0 {
			// A picked message stays gone unless its text comes: it was
			// expunged meanwhile.
			for j := range part {
				part[j].gone = want(&part[j])
			}
			i := 0
			err := st.Bodies(ctx, acc, folderID, uids, func(uid store.UID, body []byte) error {
				for part[i].info.UID != uid {
					i++
				}
				part[i].body, part[i].gone = body, false
				return nil
			})
			if err != nil {
				return err
			}
		}
		if err := send(part); err != nil {
			return err
		}
	}
	return nil
}
