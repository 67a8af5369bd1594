package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"

	"postkasse.dev/postkasse/store"
)

// maxCardName bounds a card's resource name.
const maxCardName = 255

// getCard serves a card exactly as stored (or, in the directory, as
// generated in the version the Accept header asks for).
func (s *Server) getCard(w http.ResponseWriter, r *http.Request, p davPath) {
	bk, _ := s.book(p.user, p.book)
	c, err := s.card(r.Context(), bk, p.card, askedVersion(r.Header.Get("Accept")))
	if err != nil {
		s.davError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/vcard; charset=utf-8")
	h.Set("ETag", quoteETag(c.etag))
	if !c.modified.IsZero() {
		h.Set("Last-Modified", c.modified.UTC().Format(http.TimeFormat))
	}
	if r.Method == http.MethodHead {
		h.Set("Content-Length", fmt.Sprint(len(c.data)))
		return
	}
	w.Write(c.data)
}

// putCard stores a card byte for byte once it is known to be one vCard,
// and answers only after the store committed it.
func (s *Server) putCard(w http.ResponseWriter, r *http.Request, p davPath) {
	bk, _ := s.book(p.user, p.book)
	if bk.readOnly {
		http.Error(w, "This address book is read-only for you.", http.StatusForbidden)
		return
	}
	if len(p.card) > maxCardName {
		http.Error(w, "The card's name is too long.", http.StatusBadRequest)
		return
	}
	if t, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (t != vcard.MIMEType && t != "text/x-vcard") {
		http.Error(w, "A card is sent as text/vcard.", http.StatusUnsupportedMediaType)
		return
	}
	if r.ContentLength > s.opts.MaxCardBytes {
		http.Error(w, "The card is too large.", http.StatusRequestEntityTooLarge)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxCardBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		http.Error(w, "The card is too large.", http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "The card did not arrive whole.", http.StatusBadRequest)
		return
	}
	if err := checkCard(data); err != nil {
		http.Error(w, "Not a vCard: "+err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("If-None-Match") == "*" {
		if _, err := s.opts.Cards.Card(r.Context(), bk.cards, p.card); err == nil {
			http.Error(w, "A card of that name exists.", http.StatusPreconditionFailed)
			return
		}
	}
	c, created, err := s.opts.Cards.PutCard(r.Context(), bk.cards, p.card, data, unquoteETag(r.Header.Get("If-Match")), s.opts.Now())
	if err != nil {
		s.davError(w, r, err)
		return
	}
	s.log.Info("card stored", "user", p.user, "book", p.book, "card", p.card, "bytes", len(data))
	w.Header().Set("ETag", quoteETag(c.ETag))
	if created {
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteCard removes a card, durably before the answer.
func (s *Server) deleteCard(w http.ResponseWriter, r *http.Request, p davPath) {
	bk, _ := s.book(p.user, p.book)
	if bk.readOnly {
		http.Error(w, "This address book is read-only for you.", http.StatusForbidden)
		return
	}
	err := s.opts.Cards.DeleteCard(r.Context(), bk.cards, p.card, unquoteETag(r.Header.Get("If-Match")), s.opts.Now())
	if err != nil {
		s.davError(w, r, err)
		return
	}
	s.log.Info("card deleted", "user", p.user, "book", p.book, "card", p.card)
	w.WriteHeader(http.StatusNoContent)
}

// checkCard accepts exactly one vCard 3.0 or 4.0 with a formatted name
// (RFC 6352 §5.1: one vCard per resource; FN is required by both
// versions).
func checkCard(data []byte) error {
	dec := vcard.NewDecoder(bytes.NewReader(data))
	card, err := dec.Decode()
	if err != nil {
		return err
	}
	switch v := card.Value(vcard.FieldVersion); v {
	case "3.0", "4.0":
	default:
		return fmt.Errorf("VERSION %q is not 3.0 or 4.0", v)
	}
	if strings.TrimSpace(card.Value(vcard.FieldFormattedName)) == "" {
		return errors.New("no FN")
	}
	if _, err := dec.Decode(); !errors.Is(err, io.EOF) {
		return errors.New("more than one vCard")
	}
	return nil
}

func quoteETag(e string) string { return `"` + e + `"` }

func unquoteETag(e string) string {
	e = strings.TrimSpace(e)
	if e == "*" {
		return e
	}
	if m, err := webdav.ConditionalMatch(e).ETag(); err == nil {
		return m
	}
	return strings.Trim(strings.TrimPrefix(e, "W/"), `"`)
}

// davError answers err: the store's errors with their status, anything
// else 500 with a logged reference.
func (s *Server) davError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.NotFound(w, r)
	case errors.Is(err, store.ErrConflict):
		http.Error(w, "The card changed since you read it.", http.StatusPreconditionFailed)
	default:
		s.log.Error("dav request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
	}
}
