package web

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
)

// multistatus is a REPORT's answer (RFC 4918 §13). Element names carry
// the D: and C: prefixes declared on the root, as CardDAV clients expect.
type multistatus struct {
	XMLName   xml.Name     `xml:"D:multistatus"`
	NSDAV     string       `xml:"xmlns:D,attr"`
	NSCardDAV string       `xml:"xmlns:C,attr"`
	Responses []msResponse `xml:"D:response"`
	SyncToken string       `xml:"D:sync-token,omitempty"`
}

type msResponse struct {
	Href      string       `xml:"D:href"`
	Status    string       `xml:"D:status,omitempty"`
	Propstats []msPropstat `xml:"D:propstat"`
}

type msPropstat struct {
	Prop   msProp `xml:"D:prop"`
	Status string `xml:"D:status"`
}

// msProp holds the properties of one propstat; only those set are
// written.
type msProp struct {
	ETag          string      `xml:"D:getetag,omitempty"`
	ContentType   string      `xml:"D:getcontenttype,omitempty"`
	ContentLength int         `xml:"D:getcontentlength,omitempty"`
	AddressData   *chardata   `xml:"C:address-data,omitempty"`
	Missing       []emptyProp `xml:",omitempty"`
}

type chardata struct {
	Text string `xml:",chardata"`
}

// emptyProp is a property the server does not have, named as asked.
type emptyProp struct {
	XMLName xml.Name
}

func newMultistatus() *multistatus {
	return &multistatus{NSDAV: nsDAV, NSCardDAV: nsCardDAV}
}

const (
	statusOK       = "HTTP/1.1 200 OK"
	statusNotFound = "HTTP/1.1 404 Not Found"
)

// addCard adds a card with the properties asked for (the ETag and the
// card itself when prop is nil).
func (ms *multistatus) addCard(base string, c bookCard, prop *propRequest) {
	var found, missing msProp
	if prop == nil {
		prop = &propRequest{Props: []propName{
			{XMLName: xml.Name{Space: nsDAV, Local: "getetag"}},
			{XMLName: xml.Name{Space: nsCardDAV, Local: "address-data"}},
		}}
	}
	for _, p := range prop.Props {
		switch p.XMLName {
		case xml.Name{Space: nsDAV, Local: "getetag"}:
			found.ETag = quoteETag(c.etag)
		case xml.Name{Space: nsDAV, Local: "getcontenttype"}:
			found.ContentType = "text/vcard; charset=utf-8"
		case xml.Name{Space: nsDAV, Local: "getcontentlength"}:
			found.ContentLength = len(c.data)
		case xml.Name{Space: nsCardDAV, Local: "address-data"}:
			found.AddressData = &chardata{Text: string(c.data)}
		default:
			missing.Missing = append(missing.Missing, emptyProp{XMLName: p.XMLName})
		}
	}
	resp := msResponse{Href: base + url.PathEscape(c.name)}
	resp.Propstats = append(resp.Propstats, msPropstat{Prop: found, Status: statusOK})
	if len(missing.Missing) > 0 {
		resp.Propstats = append(resp.Propstats, msPropstat{Prop: missing, Status: statusNotFound})
	}
	ms.Responses = append(ms.Responses, resp)
}

// addMissing adds a card that is not there (multiget) or is gone (sync).
func (ms *multistatus) addMissing(href string) {
	ms.Responses = append(ms.Responses, msResponse{Href: href, Status: statusNotFound})
}

func (ms *multistatus) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Encode(ms)
}

// readBody reads a request body within the limit serveDAV set.
func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(r.Body)
}
