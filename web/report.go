package web

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/emersion/go-webdav/carddav"
)

// The REPORTs of a book: addressbook-query and addressbook-multiget
// (RFC 6352 §8.6, §8.7) and sync-collection (RFC 6578). They are served
// here rather than by go-webdav so that cards go out byte for byte.

const (
	nsDAV     = "DAV:"
	nsCardDAV = "urn:ietf:params:xml:ns:carddav"
)

// syncTokenPrefix starts every sync token (RFC 6578 §3.2: a URI).
const syncTokenPrefix = "http://postkasse.dev/ns/sync/"

// reportRequest is the body of any of the three REPORTs.
type reportRequest struct {
	XMLName   xml.Name
	Prop      *propRequest `xml:"DAV: prop"`
	Hrefs     []string     `xml:"DAV: href"`
	Filter    *filterXML   `xml:"urn:ietf:params:xml:ns:carddav filter"`
	Limit     *limitXML    `xml:"urn:ietf:params:xml:ns:carddav limit"`
	SyncToken string       `xml:"DAV: sync-token"`
	SyncLevel string       `xml:"DAV: sync-level"`
}

type limitXML struct {
	NResults int `xml:"urn:ietf:params:xml:ns:carddav nresults"`
}

// propRequest is the list of properties asked for.
type propRequest struct {
	Props []propName `xml:",any"`
}

type propName struct {
	XMLName xml.Name
	Version string `xml:"version,attr"`
}

type filterXML struct {
	Test  string          `xml:"test,attr"`
	Props []propFilterXML `xml:"urn:ietf:params:xml:ns:carddav prop-filter"`
}

type propFilterXML struct {
	Name         string           `xml:"name,attr"`
	Test         string           `xml:"test,attr"`
	IsNotDefined *struct{}        `xml:"urn:ietf:params:xml:ns:carddav is-not-defined"`
	TextMatches  []textMatchXML   `xml:"urn:ietf:params:xml:ns:carddav text-match"`
	Params       []paramFilterXML `xml:"urn:ietf:params:xml:ns:carddav param-filter"`
}

type paramFilterXML struct {
	Name         string        `xml:"name,attr"`
	IsNotDefined *struct{}     `xml:"urn:ietf:params:xml:ns:carddav is-not-defined"`
	TextMatch    *textMatchXML `xml:"urn:ietf:params:xml:ns:carddav text-match"`
}

type textMatchXML struct {
	Text      string `xml:",chardata"`
	Negate    string `xml:"negate-condition,attr"`
	MatchType string `xml:"match-type,attr"`
}

// parseReport reads a REPORT body.
func parseReport(data []byte) (*reportRequest, error) {
	var req reportRequest
	if err := xml.Unmarshal(data, &req); err != nil {
		return nil, err
	}
	switch req.XMLName {
	case xml.Name{Space: nsCardDAV, Local: "addressbook-query"}:
		if req.Filter == nil {
			return nil, errors.New("addressbook-query without a filter")
		}
	case xml.Name{Space: nsCardDAV, Local: "addressbook-multiget"}, xml.Name{Space: nsDAV, Local: "sync-collection"}:
	default:
		return nil, fmt.Errorf("unsupported report %s %s", req.XMLName.Space, req.XMLName.Local)
	}
	return &req, nil
}

// query converts the filter for go-webdav's matcher.
func (f *filterXML) query() (*carddav.AddressBookQuery, error) {
	q := &carddav.AddressBookQuery{}
	var err error
	if q.FilterTest, err = filterTest(f.Test); err != nil {
		return nil, err
	}
	for _, pf := range f.Props {
		p := carddav.PropFilter{Name: strings.ToUpper(pf.Name), IsNotDefined: pf.IsNotDefined != nil}
		if p.Test, err = filterTest(pf.Test); err != nil {
			return nil, err
		}
		for _, tm := range pf.TextMatches {
			m, err := tm.match()
			if err != nil {
				return nil, err
			}
			p.TextMatches = append(p.TextMatches, *m)
		}
		for _, par := range pf.Params {
			pp := carddav.ParamFilter{Name: strings.ToUpper(par.Name), IsNotDefined: par.IsNotDefined != nil}
			if par.TextMatch != nil {
				if pp.TextMatch, err = par.TextMatch.match(); err != nil {
					return nil, err
				}
			}
			p.Params = append(p.Params, pp)
		}
		q.PropFilters = append(q.PropFilters, p)
	}
	return q, nil
}

func filterTest(t string) (carddav.FilterTest, error) {
	switch t {
	case "", "anyof":
		return carddav.FilterAnyOf, nil
	case "allof":
		return carddav.FilterAllOf, nil
	}
	return "", fmt.Errorf("unknown test %q", t)
}

func (tm *textMatchXML) match() (*carddav.TextMatch, error) {
	m := &carddav.TextMatch{Text: tm.Text, NegateCondition: tm.Negate == "yes"}
	switch tm.MatchType {
	case "":
		m.MatchType = carddav.MatchContains
	case "equals", "contains", "starts-with", "ends-with":
		m.MatchType = carddav.MatchType(tm.MatchType)
	default:
		return nil, fmt.Errorf("unknown match-type %q", tm.MatchType)
	}
	return m, nil
}

// version is the vCard version the request's address-data asks for.
func (req *reportRequest) version() string {
	if req.Prop != nil {
		for _, p := range req.Prop.Props {
			if p.XMLName.Space == nsCardDAV && p.XMLName.Local == "address-data" {
				return askedVersion(p.Version)
			}
		}
	}
	return "3.0"
}

// serveReport answers a REPORT on a book.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request, p davPath) {
	if p.depth != 3 {
		http.Error(w, "REPORTs are made on an address book.", http.StatusForbidden)
		return
	}
	data, err := readBody(r)
	if err != nil {
		http.Error(w, "The request is too large.", http.StatusRequestEntityTooLarge)
		return
	}
	req, err := parseReport(data)
	if err != nil {
		http.Error(w, "Bad REPORT: "+err.Error(), http.StatusBadRequest)
		return
	}
	bk, _ := s.book(p.user, p.book)
	version := req.version()
	all, err := s.cards(r.Context(), bk, version)
	if err != nil {
		s.davError(w, r, err)
		return
	}
	ms := newMultistatus()
	base := bk.path(p.user)
	switch req.XMLName.Local {
	case "addressbook-multiget":
		byName := make(map[string]bookCard, len(all))
		for _, c := range all {
			byName[c.name] = c
		}
		for _, href := range req.Hrefs {
			name, ok := cardNameOf(base, href)
			if c, found := byName[name]; ok && found {
				ms.addCard(base, c, req.Prop)
			} else {
				ms.addMissing(href)
			}
		}
	case "addressbook-query":
		if err := s.query(ms, req, base, all); err != nil {
			http.Error(w, "Bad filter: "+err.Error(), http.StatusBadRequest)
			return
		}
	default:
		if !s.syncCollection(w, r, ms, req, bk, base, all) {
			return
		}
	}
	ms.write(w)
}

// query adds the cards that match the filter, up to the limit.
func (s *Server) query(ms *multistatus, req *reportRequest, base string, all []bookCard) error {
	q, err := req.Filter.query()
	if err != nil {
		return err
	}
	n := 0
	for _, c := range all {
		ok, err := matches(q, base, c)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if req.Limit != nil && req.Limit.NResults > 0 && n >= req.Limit.NResults {
			break
		}
		ms.addCard(base, c, req.Prop)
		n++
	}
	return nil
}

// matches applies go-webdav's matcher, except that an empty filter
// matches every card (RFC 6352 §10.5 allows zero prop-filters; the
// matcher would match none).
func matches(q *carddav.AddressBookQuery, base string, c bookCard) (bool, error) {
	if len(q.PropFilters) == 0 {
		return true, nil
	}
	ao, err := addressObject(base, c)
	if err != nil {
		return false, err
	}
	return carddav.Match(q, ao)
}

// syncCollection adds what changed since the client's token (everything
// for an empty one) and the new token. An unknown token is refused as
// RFC 6578 §3.2 says, and the client starts over.
func (s *Server) syncCollection(w http.ResponseWriter, r *http.Request, ms *multistatus, req *reportRequest, bk book, base string, all []bookCard) bool {
	if bk.directory {
		dcs, err := directoryCards(s.opts.Directory())
		if err != nil {
			s.davError(w, r, err)
			return false
		}
		token := directoryToken(dcs)
		if req.SyncToken != "" && req.SyncToken != token {
			invalidToken(w)
			return false
		}
		if req.SyncToken == "" {
			for _, c := range all {
				ms.addCard(base, c, req.Prop)
			}
		}
		ms.SyncToken = token
		return true
	}
	since := uint64(0)
	if req.SyncToken != "" {
		n, err := strconv.ParseUint(strings.TrimPrefix(req.SyncToken, syncTokenPrefix), 10, 64)
		if err != nil || !strings.HasPrefix(req.SyncToken, syncTokenPrefix) {
			invalidToken(w)
			return false
		}
		since = n
	}
	changes, now, err := s.opts.Cards.CardChanges(r.Context(), bk.cards, since)
	if err != nil {
		s.davError(w, r, err)
		return false
	}
	if since > now {
		invalidToken(w)
		return false
	}
	for _, c := range changes {
		if c.Deleted {
			ms.addMissing(base + url.PathEscape(c.Name))
			continue
		}
		ms.addCard(base, fromStore(c), req.Prop)
	}
	ms.SyncToken = syncTokenPrefix + strconv.FormatUint(now, 10)
	return true
}

func invalidToken(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprint(w, xml.Header+`<D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>`)
}

// cardNameOf returns the card name an href names inside the book at base.
func cardNameOf(base, href string) (string, bool) {
	u, err := url.Parse(href)
	if err != nil {
		return "", false
	}
	dir, name := path.Split(u.Path)
	if dir != base || name == "" {
		return "", false
	}
	return name, true
}
