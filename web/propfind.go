package web

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
)

// go-webdav answers PROPFIND on a book with a fixed set of properties. The
// ones clients use to sync cheaply are added here: sync-token (RFC 6578
// §4), getctag (the CalendarServer extension Apple's clients and DAVx5
// read), supported-report-set (RFC 3253 §3.1.5, which tells DAVx5 that
// sync-collection works) and current-user-privilege-set (RFC 3744 §5.4,
// which tells clients a book is read-only).

// extraProps are the properties added to books, by name.
var extraProps = map[xml.Name]bool{
	{Space: nsDAV, Local: "sync-token"}:                        true,
	{Space: "http://calendarserver.org/ns/", Local: "getctag"}: true,
	{Space: nsDAV, Local: "supported-report-set"}:              true,
	{Space: nsDAV, Local: "current-user-privilege-set"}:        true,
}

// propfindRequest is the part of a PROPFIND body that matters here.
type propfindRequest struct {
	Prop *propRequest `xml:"DAV: prop"`
}

// rawMultistatus keeps go-webdav's answer as it is, element by element.
type rawMultistatus struct {
	XMLName   xml.Name      `xml:"DAV: multistatus"`
	Responses []rawResponse `xml:"DAV: response"`
}

type rawResponse struct {
	XMLName   xml.Name      `xml:"DAV: response"`
	Href      string        `xml:"DAV: href"`
	Propstats []rawPropstat `xml:"DAV: propstat"`
	Rest      []rawElement  `xml:",any"`
}

type rawPropstat struct {
	XMLName xml.Name `xml:"DAV: propstat"`
	Prop    rawProp  `xml:"DAV: prop"`
	Status  string   `xml:"DAV: status"`
}

type rawProp struct {
	Props []rawElement `xml:",any"`
}

type rawElement struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   []byte     `xml:",innerxml"`
}

// dropNamespaceAttrs removes the xmlns attributes the decoder reports as
// plain ones: the encoder writes the element's namespace itself, and
// would write it twice.
func (ms *rawMultistatus) dropNamespaceAttrs() {
	for i := range ms.Responses {
		resp := &ms.Responses[i]
		for j := range resp.Propstats {
			props := resp.Propstats[j].Prop.Props
			for k := range props {
				props[k].Attrs = withoutNamespaces(props[k].Attrs)
			}
		}
		for k := range resp.Rest {
			resp.Rest[k].Attrs = withoutNamespaces(resp.Rest[k].Attrs)
		}
	}
}

func withoutNamespaces(attrs []xml.Attr) []xml.Attr {
	var out []xml.Attr
	for _, a := range attrs {
		if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
			out = append(out, a)
		}
	}
	return out
}

// bufferedResponse holds go-webdav's answer so it can be completed.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedResponse) WriteHeader(code int) { b.code = code }

// propfind lets go-webdav answer, then adds the properties it lacks to
// the books in the answer.
func (s *Server) propfind(w http.ResponseWriter, r *http.Request, lib http.Handler) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "The request is too large.", http.StatusRequestEntityTooLarge)
		return
	}
	var req propfindRequest
	xml.Unmarshal(body, &req) // go-webdav judges the body; here only named properties matter
	var wanted []xml.Name
	if req.Prop != nil {
		for _, p := range req.Prop.Props {
			if extraProps[p.XMLName] {
				wanted = append(wanted, p.XMLName)
			}
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	buf := &bufferedResponse{header: w.Header()}
	lib.ServeHTTP(buf, r)
	out := buf.body.Bytes()
	if buf.code == http.StatusMultiStatus && len(wanted) > 0 {
		if completed, err := s.addBookProps(r, out, wanted); err == nil {
			out = completed
		} else {
			s.log.Warn("propfind: answer left as go-webdav gave it", "err", err)
		}
	}
	w.Header().Del("Content-Length")
	if buf.code != 0 {
		w.WriteHeader(buf.code)
	}
	w.Write(out)
}

// addBookProps moves the wanted properties of every book in the answer
// from "not found" to found, with their values.
func (s *Server) addBookProps(r *http.Request, data []byte, wanted []xml.Name) ([]byte, error) {
	var ms rawMultistatus
	if err := xml.Unmarshal(data, &ms); err != nil {
		return nil, err
	}
	ms.dropNamespaceAttrs()
	user := userOf(r.Context())
	books := make(map[string]book)
	for _, bk := range s.books(user) {
		books[bk.path(user)] = bk
	}
	for i := range ms.Responses {
		resp := &ms.Responses[i]
		bk, ok := books[resp.Href]
		if !ok {
			continue
		}
		var found []rawElement
		for _, name := range wanted {
			el, err := s.bookProp(r, bk, name)
			if err != nil {
				return nil, err
			}
			found = append(found, el)
		}
		resp.setFound(found)
	}
	var out bytes.Buffer
	out.WriteString(xml.Header)
	if err := xml.NewEncoder(&out).Encode(ms); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// setFound puts props into the 200 propstat and takes them out of the
// others.
func (resp *rawResponse) setFound(props []rawElement) {
	names := make(map[xml.Name]bool, len(props))
	for _, p := range props {
		names[p.XMLName] = true
	}
	var kept []rawPropstat
	ok := -1
	for _, ps := range resp.Propstats {
		var left []rawElement
		for _, p := range ps.Prop.Props {
			if !names[p.XMLName] {
				left = append(left, p)
			}
		}
		ps.Prop.Props = left
		if ps.Status == statusOK {
			ok = len(kept)
		}
		if len(left) > 0 || ps.Status == statusOK {
			kept = append(kept, ps)
		}
	}
	if ok < 0 {
		kept = append(kept, rawPropstat{Status: statusOK})
		ok = len(kept) - 1
	}
	kept[ok].Prop.Props = append(kept[ok].Prop.Props, props...)
	resp.Propstats = kept
}

// bookProp is one added property of a book.
func (s *Server) bookProp(r *http.Request, bk book, name xml.Name) (rawElement, error) {
	el := rawElement{XMLName: name}
	switch name.Local {
	case "sync-token", "getctag":
		token, err := s.syncToken(r, bk)
		if err != nil {
			return el, err
		}
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(token))
		el.Inner = b.Bytes()
	case "supported-report-set":
		el.Inner = []byte(`<D:supported-report xmlns:D="DAV:"><D:report><D:sync-collection/></D:report></D:supported-report>` +
			`<D:supported-report xmlns:D="DAV:"><D:report><C:addressbook-query xmlns:C="` + nsCardDAV + `"/></D:report></D:supported-report>` +
			`<D:supported-report xmlns:D="DAV:"><D:report><C:addressbook-multiget xmlns:C="` + nsCardDAV + `"/></D:report></D:supported-report>`)
	case "current-user-privilege-set":
		privs := []string{"read", "read-current-user-privilege-set"}
		if !bk.readOnly {
			privs = append(privs, "write", "write-content", "bind", "unbind")
		}
		var b bytes.Buffer
		for _, p := range privs {
			b.WriteString(`<D:privilege xmlns:D="DAV:"><D:` + p + `/></D:privilege>`)
		}
		el.Inner = b.Bytes()
	}
	return el, nil
}

// syncToken is a book's current sync token, which also serves as its
// ctag: it changes whenever a card does.
func (s *Server) syncToken(r *http.Request, bk book) (string, error) {
	if bk.directory {
		dcs, err := directoryCards(s.opts.Directory())
		if err != nil {
			return "", err
		}
		return directoryToken(dcs), nil
	}
	_, now, err := s.opts.Cards.CardChanges(r.Context(), bk.cards, ^uint64(0))
	if err != nil {
		return "", err
	}
	return syncTokenPrefix + strconv.FormatUint(now, 10), nil
}
