package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/carddav"

	"postkasse.dev/postkasse/store"
)

// serveDAV answers a logged-in CardDAV request. go-webdav's handler does
// discovery (PROPFIND, OPTIONS); cards themselves are read and written
// here, because the library decodes every card it receives and encodes
// every card it sends, which would not keep them byte for byte, and its
// server has no sync-collection REPORT (see TestGoWebdavServer).
func (s *Server) serveDAV(w http.ResponseWriter, r *http.Request) {
	p, ok := parseDAVPath(r.URL.Path)
	if !ok || (p.depth > 0 && p.user != userOf(r.Context())) {
		http.NotFound(w, r)
		return
	}
	if p.depth >= 3 {
		if _, ok := s.book(p.user, p.book); !ok {
			http.NotFound(w, r)
			return
		}
	}
	if r.Method != http.MethodPut {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	}
	switch {
	case r.Method == "REPORT":
		s.serveReport(w, r, p)
	case p.depth == 4 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.getCard(w, r, p)
	case p.depth == 4 && r.Method == http.MethodPut:
		s.putCard(w, r, p)
	case p.depth == 4 && r.Method == http.MethodDelete:
		s.deleteCard(w, r, p)
	case r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == "MKCOL" ||
		r.Method == "COPY" || r.Method == "MOVE":
		http.Error(w, "The server keeps the address books; cards can be added and removed.", http.StatusForbidden)
	case r.Method == "PROPFIND" && (p.depth == 2 || p.depth == 3):
		s.propfind(w, r, &carddav.Handler{Backend: davBackend{s}, Prefix: davPrefix})
	default:
		h := carddav.Handler{Backend: davBackend{s}, Prefix: davPrefix}
		h.ServeHTTP(w, r)
	}
}

// davBackend shows go-webdav the logged-in user's books.
type davBackend struct{ s *Server }

var errMadeHere = webdav.NewHTTPError(http.StatusForbidden, errors.New("address books are made by the server"))

// CurrentUserPrincipal implements webdav.UserPrincipalBackend.
func (b davBackend) CurrentUserPrincipal(ctx context.Context) (string, error) {
	return principalPath(userOf(ctx)), nil
}

// AddressBookHomeSetPath implements carddav.Backend.
func (b davBackend) AddressBookHomeSetPath(ctx context.Context) (string, error) {
	return homePath(userOf(ctx)), nil
}

// ListAddressBooks implements carddav.Backend.
func (b davBackend) ListAddressBooks(ctx context.Context) ([]carddav.AddressBook, error) {
	user := userOf(ctx)
	var out []carddav.AddressBook
	for _, bk := range b.s.books(user) {
		out = append(out, b.addressBook(user, bk))
	}
	return out, nil
}

func (b davBackend) addressBook(user string, bk book) carddav.AddressBook {
	return carddav.AddressBook{
		Path: bk.path(user), Name: bk.display, Description: bk.description,
		MaxResourceSize: b.s.opts.MaxCardBytes,
		SupportedAddressData: []carddav.AddressDataType{
			{ContentType: vcard.MIMEType, Version: "3.0"}, {ContentType: vcard.MIMEType, Version: "4.0"},
		},
	}
}

// GetAddressBook implements carddav.Backend.
func (b davBackend) GetAddressBook(ctx context.Context, path string) (*carddav.AddressBook, error) {
	user := userOf(ctx)
	p, ok := parseDAVPath(path)
	if !ok || p.depth != 3 || p.user != user {
		return nil, webdav.NewHTTPError(http.StatusNotFound, errors.New("no such address book"))
	}
	bk, ok := b.s.book(user, p.book)
	if !ok {
		return nil, webdav.NewHTTPError(http.StatusNotFound, errors.New("no such address book"))
	}
	ab := b.addressBook(user, bk)
	return &ab, nil
}

// CreateAddressBook implements carddav.Backend: users cannot.
func (b davBackend) CreateAddressBook(context.Context, *carddav.AddressBook) error {
	return errMadeHere
}

// DeleteAddressBook implements carddav.Backend: users cannot.
func (b davBackend) DeleteAddressBook(context.Context, string) error { return errMadeHere }

// GetAddressObject implements carddav.Backend.
func (b davBackend) GetAddressObject(ctx context.Context, path string, _ *carddav.AddressDataRequest) (*carddav.AddressObject, error) {
	p, ok := parseDAVPath(path)
	if !ok || p.depth != 4 || p.user != userOf(ctx) {
		return nil, webdav.NewHTTPError(http.StatusNotFound, errors.New("no such card"))
	}
	bk, ok := b.s.book(p.user, p.book)
	if !ok {
		return nil, webdav.NewHTTPError(http.StatusNotFound, errors.New("no such card"))
	}
	c, err := b.s.card(ctx, bk, p.card, "3.0")
	if err != nil {
		return nil, libError(err)
	}
	return addressObject(bk.path(p.user), c)
}

// ListAddressObjects implements carddav.Backend.
func (b davBackend) ListAddressObjects(ctx context.Context, path string, _ *carddav.AddressDataRequest) ([]carddav.AddressObject, error) {
	user := userOf(ctx)
	p, ok := parseDAVPath(path)
	if !ok || p.depth != 3 || p.user != user {
		return nil, webdav.NewHTTPError(http.StatusNotFound, errors.New("no such address book"))
	}
	bk, ok := b.s.book(user, p.book)
	if !ok {
		return nil, webdav.NewHTTPError(http.StatusNotFound, errors.New("no such address book"))
	}
	cards, err := b.s.cards(ctx, bk, "3.0")
	if err != nil {
		return nil, err
	}
	out := make([]carddav.AddressObject, 0, len(cards))
	for _, c := range cards {
		ao, err := addressObject(bk.path(user), c)
		if err != nil {
			return nil, err
		}
		out = append(out, *ao)
	}
	return out, nil
}

// QueryAddressObjects implements carddav.Backend.
func (b davBackend) QueryAddressObjects(ctx context.Context, path string, query *carddav.AddressBookQuery) ([]carddav.AddressObject, error) {
	all, err := b.ListAddressObjects(ctx, path, &query.DataRequest)
	if err != nil {
		return nil, err
	}
	return carddav.Filter(query, all)
}

// PutAddressObject implements carddav.Backend. serveDAV stores cards
// itself (putCard), so this is reached by no request.
func (b davBackend) PutAddressObject(context.Context, string, vcard.Card, *carddav.PutAddressObjectOptions) (*carddav.AddressObject, error) {
	return nil, webdav.NewHTTPError(http.StatusMethodNotAllowed, errors.New("cards are stored by PUT to their own URL"))
}

// DeleteAddressObject implements carddav.Backend; serveDAV deletes cards
// itself (deleteCard), so this too is reached by no request.
func (b davBackend) DeleteAddressObject(context.Context, string) error {
	return webdav.NewHTTPError(http.StatusMethodNotAllowed, errors.New("cards are deleted by DELETE of their own URL"))
}

// bookCard is a card as served: stored or generated.
type bookCard struct {
	name     string
	data     []byte
	etag     string
	modified time.Time
}

func addressObject(bookPath string, c bookCard) (*carddav.AddressObject, error) {
	card, err := vcard.NewDecoder(bytes.NewReader(c.data)).Decode()
	if err != nil {
		return nil, fmt.Errorf("stored card %s: %w", c.name, err)
	}
	return &carddav.AddressObject{
		Path: bookPath + c.name, ModTime: c.modified, ContentLength: int64(len(c.data)),
		ETag: c.etag, Card: card,
	}, nil
}

func fromStore(c store.Card) bookCard {
	return bookCard{name: c.Name, data: c.Data, etag: c.ETag, modified: c.Modified}
}

// cards returns every card of a book; directory cards in version.
func (s *Server) cards(ctx context.Context, bk book, version string) ([]bookCard, error) {
	if bk.directory {
		dcs, err := directoryCards(s.opts.Directory())
		if err != nil {
			return nil, err
		}
		out := make([]bookCard, 0, len(dcs))
		for _, c := range dcs {
			out = append(out, bookCard{name: c.name, data: c.data(version), etag: c.etag})
		}
		return out, nil
	}
	stored, err := s.opts.Cards.Cards(ctx, bk.cards)
	if err != nil {
		return nil, err
	}
	out := make([]bookCard, 0, len(stored))
	for _, c := range stored {
		out = append(out, fromStore(c))
	}
	return out, nil
}

var errNoCard = fmt.Errorf("no such card: %w", store.ErrNotFound)

// libError gives go-webdav's handler an error it answers with the right
// status.
func libError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return webdav.NewHTTPError(http.StatusNotFound, err)
	}
	return err
}

// card returns one card of a book; a directory card in version.
func (s *Server) card(ctx context.Context, bk book, name, version string) (bookCard, error) {
	if bk.directory {
		all, err := s.cards(ctx, bk, version)
		if err != nil {
			return bookCard{}, err
		}
		for _, c := range all {
			if c.name == name {
				return c, nil
			}
		}
		return bookCard{}, errNoCard
	}
	c, err := s.opts.Cards.Card(ctx, bk.cards, name)
	if errors.Is(err, store.ErrNotFound) {
		return bookCard{}, errNoCard
	}
	if err != nil {
		return bookCard{}, err
	}
	return fromStore(c), nil
}

// askedVersion is the vCard version a client asks for in an Accept
// header or address-data element: 4.0 only when it says so.
func askedVersion(v string) string {
	if strings.Contains(v, "4.0") {
		return "4.0"
	}
	return "3.0"
}
