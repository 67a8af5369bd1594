package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// errCorrupt reports a record that cannot be decoded.
var errCorrupt = errors.New("store: corrupt record")

// messageRecord is a message as kept in a folder. The body lives in the
// blobs bucket under hash; prefix holds the header lines added for this
// mailbox alone (Delivered-To), so the shared body can be stored once.
// searchID is the id of the body's search data (blobs.go), 0 for none or
// for a record written before search data: it is the record's last field,
// present only when not 0, so older records decode as they are.
type messageRecord struct {
	flags    FlagSet
	date     time.Time
	size     int64 // len(prefix) + len(body)
	hash     [32]byte
	prefix   []byte
	meta     []byte
	searchID uint64
}

const messageRecordVersion = 1

// messageRecordFixed is the length of a record's fixed part: version,
// flag bits, date, size and body hash. The keyword list follows it.
const messageRecordFixed = 1 + 2 + 8 + 8 + 32

// maxRecordKeywords bounds the keyword count a record may claim.
const maxRecordKeywords = 1000

func (m *messageRecord) encode() []byte {
	n := messageRecordFixed + 3*binary.MaxVarintLen64 + len(m.prefix) + len(m.meta)
	for _, k := range m.flags.Keywords {
		n += binary.MaxVarintLen64 + len(k)
	}
	b := make([]byte, 0, n)
	b = append(b, messageRecordVersion)
	b = binary.BigEndian.AppendUint16(b, m.flags.Bits)
	b = binary.BigEndian.AppendUint64(b, uint64(m.date.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(m.size))
	b = append(b, m.hash[:]...)
	b = binary.AppendUvarint(b, uint64(len(m.flags.Keywords)))
	for _, k := range m.flags.Keywords {
		b = appendBytes(b, []byte(k))
	}
	b = appendBytes(b, m.prefix)
	b = appendBytes(b, m.meta)
	if m.searchID != 0 {
		b = binary.AppendUvarint(b, m.searchID)
	}
	return b
}

// decodeMessage decodes a record. With copyBytes false, prefix and meta
// alias data, which dies with the transaction.
func decodeMessage(data []byte, m *messageRecord, copyBytes bool) error {
	if len(data) < messageRecordFixed || data[0] != messageRecordVersion {
		return errCorrupt
	}
	m.flags.Bits = binary.BigEndian.Uint16(data[1:])
	m.date = time.Unix(0, int64(binary.BigEndian.Uint64(data[3:])))
	m.size = int64(binary.BigEndian.Uint64(data[11:]))
	copy(m.hash[:], data[19:51])
	r := reader{b: data[messageRecordFixed:]}
	keywords, ok := readKeywords(&r)
	if !ok {
		return errCorrupt
	}
	m.flags.Keywords = keywords
	m.prefix = r.bytes()
	m.meta = r.bytes()
	m.searchID = 0
	if r.err == nil && len(r.b) > 0 {
		m.searchID = r.uvarint()
	}
	if r.err != nil {
		return r.err
	}
	if copyBytes {
		m.prefix = append([]byte(nil), m.prefix...)
		m.meta = append([]byte(nil), m.meta...)
	}
	return nil
}

// readKeywords reads a record's keyword list; false when it claims more
// than maxRecordKeywords. A list cut short ends at the cut, with r.err set.
func readKeywords(r *reader) ([]string, bool) {
	nk := r.uvarint()
	if nk > maxRecordKeywords {
		return nil, false
	}
	var out []string
	for range nk {
		k := r.bytes()
		if r.err != nil {
			break
		}
		out = append(out, string(k))
	}
	return out, true
}

// folderRecord is a folder's state.
type folderRecord struct {
	name        string
	specialUse  string
	uidValidity uint32
	uidNext     uint32
	recentFrom  uint32 // first UID no session has yet been shown as \Recent
	messages    uint32
	unseen      uint32 // shared \Seen
	size        int64
	// indexed: the folder's index (index.go) is kept. Records of version
	// 1 come from before the index, and Open builds theirs.
	indexed bool
}

// folderRecordVersion 2 is version 1 with an index kept.
const folderRecordVersion = 2

func (f *folderRecord) encode() []byte {
	version := byte(1)
	if f.indexed {
		version = folderRecordVersion
	}
	b := []byte{version}
	b = appendBytes(b, []byte(f.name))
	b = appendBytes(b, []byte(f.specialUse))
	b = binary.BigEndian.AppendUint32(b, f.uidValidity)
	b = binary.BigEndian.AppendUint32(b, f.uidNext)
	b = binary.BigEndian.AppendUint32(b, f.recentFrom)
	b = binary.BigEndian.AppendUint32(b, f.messages)
	b = binary.BigEndian.AppendUint32(b, f.unseen)
	b = binary.BigEndian.AppendUint64(b, uint64(f.size))
	return b
}

func decodeFolder(data []byte) (folderRecord, error) {
	var f folderRecord
	if len(data) < 1 || data[0] != 1 && data[0] != folderRecordVersion {
		return f, errCorrupt
	}
	f.indexed = data[0] == folderRecordVersion
	r := reader{b: data[1:]}
	f.name = string(r.bytes())
	f.specialUse = string(r.bytes())
	f.uidValidity = r.uint32()
	f.uidNext = r.uint32()
	f.recentFrom = r.uint32()
	f.messages = r.uint32()
	f.unseen = r.uint32()
	f.size = int64(r.uint64())
	if r.err != nil {
		return f, fmt.Errorf("folder record: %w", r.err)
	}
	return f, nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// reader decodes the fields appended above, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uint32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errCorrupt
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) uint64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errCorrupt
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}
