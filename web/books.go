package web

import (
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/emersion/go-vcard"

	"postkasse.dev/postkasse/policy"
	"postkasse.dev/postkasse/store"
)

// CardStore keeps the address books; *store.Store implements it.
type CardStore interface {
	PutCard(ctx context.Context, book store.Book, name string, data []byte, ifMatch string, now time.Time) (store.Card, bool, error)
	Card(ctx context.Context, book store.Book, name string) (store.Card, error)
	Cards(ctx context.Context, book store.Book) ([]store.Card, error)
	DeleteCard(ctx context.Context, book store.Book, name, ifMatch string, now time.Time) error
	CardChanges(ctx context.Context, book store.Book, since uint64) ([]store.Card, uint64, error)
}

// davPrefix is where CardDAV lives. Below it: /USER/ is the principal,
// /USER/books/ the address book home, /USER/books/BOOK/ a book and
// /USER/books/BOOK/CARD a card. USER is the mailbox's permanent id, so the
// URLs survive a change of address.
const davPrefix = "/dav"

// The books every user has, besides one per shared mailbox.
const (
	contactsBook  = "contacts"
	directoryBook = "directory"
)

// davPath is a request path split into its parts; depth says how many
// there are (0 the root, 1 a principal, 2 a home, 3 a book, 4 a card).
type davPath struct {
	user, book, card string
	depth            int
}

// parseDAVPath splits a path below davPrefix. The second segment must be
// "books"; nothing lies below a card.
func parseDAVPath(p string) (davPath, bool) {
	rest, ok := strings.CutPrefix(p, davPrefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return davPath{}, false
	}
	var parts []string
	for _, seg := range strings.Split(rest, "/") {
		if seg == "." || seg == ".." {
			return davPath{}, false
		}
		if seg != "" {
			parts = append(parts, seg)
		}
	}
	d := davPath{depth: len(parts)}
	switch {
	case len(parts) > 4:
		return davPath{}, false
	case len(parts) >= 2 && parts[1] != "books":
		return davPath{}, false
	}
	if len(parts) >= 1 {
		d.user = parts[0]
	}
	if len(parts) >= 3 {
		d.book = parts[2]
	}
	if len(parts) == 4 {
		d.card = parts[3]
	}
	return d, true
}

func principalPath(userID string) string { return davPrefix + "/" + userID + "/" }
func homePath(userID string) string      { return principalPath(userID) + "books/" }

// book is one address book as a user sees it.
type book struct {
	name        string     // the path segment
	display     string     // what clients show
	description string     // a sentence for clients that show one
	cards       store.Book // where its cards are kept; zero for the directory
	readOnly    bool
	directory   bool // generated from the configuration
}

func (b book) path(userID string) string { return homePath(userID) + b.name + "/" }

// books lists the address books userID sees: their own, the directory,
// and the contacts of every shared mailbox they may open.
func (s *Server) books(userID string) []book {
	dir := s.opts.Directory()
	me, ok := dir.Mailbox(userID)
	if !ok || me.Kind != policy.KindUser {
		return nil
	}
	out := []book{
		{name: contactsBook, display: "Contacts", description: "Your contacts", cards: store.Book{Account: me.ID, Name: contactsBook}},
		{name: directoryBook, display: "Directory", description: "Everyone at " + s.opts.Hostname + ": people, shared mailboxes and groups", readOnly: true, directory: true},
	}
	for _, mb := range dir.Reachable(userID) {
		rights := dir.Rights(userID, mb.ID)
		if !rights.CanRead() {
			continue
		}
		display := mb.Name
		if display == "" {
			display = mb.Address
		}
		out = append(out, book{
			name: mb.Address, display: display + " (contacts)", description: "The contacts of " + mb.Address,
			cards: store.Book{Account: mb.ID, Name: contactsBook}, readOnly: rights&policy.RightFull == 0,
		})
	}
	return out
}

// book finds one of userID's books by its path segment.
func (s *Server) book(userID, name string) (book, bool) {
	for _, b := range s.books(userID) {
		if b.name == name {
			return b, true
		}
	}
	return book{}, false
}

// ContactBook answers, for automatic replies, whether a mailbox's own
// address book (its "contacts" book; a shared mailbox's is its team's)
// lists an address. It reads the book at the time it is asked.
type ContactBook struct {
	Cards CardStore
}

// IsContact reports whether any card in mailboxID's contacts has addr as
// an EMAIL, ignoring case and a +tag on addr.
func (c ContactBook) IsContact(ctx context.Context, mailboxID, addr string) (bool, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	base := addr
	if local, domain, ok := strings.Cut(addr, "@"); ok {
		if l, _, tagged := strings.Cut(local, "+"); tagged {
			base = l + "@" + domain
		}
	}
	cards, err := c.Cards.Cards(ctx, store.Book{Account: mailboxID, Name: contactsBook})
	if err != nil {
		return false, err
	}
	for _, card := range cards {
		for _, e := range cardEmails(card.Data) {
			if e == addr || e == base {
				return true, nil
			}
		}
	}
	return false, nil
}

// cardEmails returns a card's EMAIL values in lower case; none when the
// card does not parse.
func cardEmails(data []byte) []string {
	card, err := vcard.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range card.Values(vcard.FieldEmail) {
		e = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(e, "mailto:")))
		out = append(out, e)
	}
	return out
}
