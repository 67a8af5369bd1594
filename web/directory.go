package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/emersion/go-vcard"

	"postkasse.dev/postkasse/policy"
)

// The organisation's directory, as a read-only address book made from the
// configuration: one card per user, shared mailbox and group, with every
// address. A group card lists its members: vCard 4.0 says so with KIND and
// MEMBER (RFC 6350 §6.1.4, §6.6.5); Apple's clients read only 3.0 and know
// groups by X-ADDRESSBOOKSERVER-KIND and -MEMBER, so a client that does not
// ask for 4.0 gets those.

// dirCard is one generated card.
type dirCard struct {
	name string // resource name in the book
	v3   []byte
	v4   []byte
	etag string // the same for both versions: it names the content
}

func (c dirCard) data(version string) []byte {
	if version == "4.0" {
		return c.v4
	}
	return c.v3
}

// entryUID is the stable UID of a mailbox's or group's card, a name-based
// UUID so that group members can refer to it as urn:uuid.
func entryUID(kind policy.Kind, id string) string {
	return nameUUID("postkasse directory", kind.String(), id)
}

// directoryCards makes the directory's cards, sorted by name.
func directoryCards(dir *policy.Directory) ([]dirCard, error) {
	var out []dirCard
	for _, mb := range dir.Mailboxes() {
		c, err := makeDirCard(mb.Kind, mb.ID, mb.Name, dir.Addresses(mb.ID), nil, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	for _, g := range dir.Groups() {
		c, err := makeDirCard(policy.KindGroup, g.ID, g.Name, []string{g.Address}, g.Members, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// makeDirCard writes one card in both versions. members is nil except
// for groups.
func makeDirCard(kind policy.Kind, id, name string, addrs, members []string, dir *policy.Directory) (dirCard, error) {
	if name == "" && len(addrs) > 0 {
		name = addrs[0]
	}
	var refs []string
	for _, m := range members {
		refs = append(refs, memberRef(dir, m))
	}
	c := dirCard{name: kind.String() + "-" + id + ".vcf"}
	for _, version := range []string{"3.0", "4.0"} {
		card := vcard.Card{}
		card.SetValue(vcard.FieldVersion, version)
		card.SetValue(vcard.FieldUID, "urn:uuid:"+entryUID(kind, id))
		card.SetValue(vcard.FieldFormattedName, name)
		card.SetName(&vcard.Name{FamilyName: name})
		for _, a := range addrs {
			card.AddValue(vcard.FieldEmail, a)
		}
		if kind == policy.KindGroup {
			if version == "4.0" {
				card.SetValue(vcard.FieldKind, "group")
				for _, r := range refs {
					card.AddValue(vcard.FieldMember, r)
				}
			} else {
				card.SetValue("X-ADDRESSBOOKSERVER-KIND", "group")
				for _, r := range refs {
					card.AddValue("X-ADDRESSBOOKSERVER-MEMBER", r)
				}
			}
		}
		var buf bytes.Buffer
		if err := vcard.NewEncoder(&buf).Encode(card); err != nil {
			return dirCard{}, fmt.Errorf("directory card %s: %w", c.name, err)
		}
		if version == "4.0" {
			c.v4 = buf.Bytes()
		} else {
			c.v3 = buf.Bytes()
		}
	}
	sum := sha256.Sum256(append(append([]byte(nil), c.v3...), c.v4...))
	c.etag = hex.EncodeToString(sum[:12])
	return c, nil
}

// memberRef names a group member: the card of a local mailbox or group,
// or the mail address of anyone else.
func memberRef(dir *policy.Directory, addr string) string {
	if t, ok := dir.Resolve(addr); ok {
		return "urn:uuid:" + entryUID(t.Kind, t.ID)
	}
	return "mailto:" + addr
}

// directoryToken is the sync token of the directory: it changes whenever
// any card does.
func directoryToken(cards []dirCard) string {
	h := sha256.New()
	for _, c := range cards {
		h.Write([]byte(c.name + "\x00" + c.etag + "\x00"))
	}
	return syncTokenPrefix + "d" + hex.EncodeToString(h.Sum(nil)[:12])
}
