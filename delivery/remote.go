package delivery

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"postkasse.dev/postkasse/mailauth"
	"postkasse.dev/postkasse/store"
)

// RemoteMessage is a message fetched from a connected account, for one
// folder of a local mailbox.
type RemoteMessage struct {
	Mailbox    string    // the local mailbox's id
	Folder     string    // created when missing
	SpecialUse string    // of the folder, when it is created here
	Host       string    // the remote server ("host:port"), for the Received header
	Body       []byte    // as fetched
	Date       time.Time // internal date; zero means now
	// Progress is the connected account's key in the store, State its
	// state once this message is filed, and Digest the hash of Body.
	Progress string
	State    store.RemoteState
	Digest   []byte
}

// FileRemote files a message pulled from a connected account, with a
// Received and a Delivered-To header, and saves the account's progress in
// the same durable commit. Bare LF line endings become CRLF, as everywhere
// in the store, and Authentication-Results in our name (forged) are
// removed; the bytes stay as fetched otherwise.
//
// The message is not routed: it was addressed to the remote account, so it
// is neither forwarded nor answered automatically. The mailbox's quota is
// a hard limit, as for APPEND: over it, nothing is filed and the error
// wraps store.ErrQuota, so the caller leaves the message on the remote and
// tries again later.
func (a *Agent) FileRemote(ctx context.Context, m *RemoteMessage) error {
	dir := a.opts.Directory()
	mb, ok := dir.Mailbox(m.Mailbox)
	if !ok {
		return fmt.Errorf("file remote message: no mailbox %q", m.Mailbox)
	}
	now := a.opts.Now()
	id := newID()
	received := "Received: from " + sanitize(hostOf(m.Host)) + "\r\n\tby " + a.opts.Hostname +
		" (postkasse) with IMAP id " + id + "\r\n\tfor <" + mb.Address + ">; " + now.Format(time.RFC1123Z) + "\r\n"
	// Results in our name that came with it were not written by us.
	body := append([]byte(received), mailauth.StripResults(toCRLF(m.Body), a.opts.Hostname)...)
	d := &store.Delivery{Body: body, Date: m.Date, Targets: []store.Target{{
		Account: mb.ID, Folder: m.Folder, SpecialUse: m.SpecialUse, Quota: mb.Quota,
		Prefix: deliveredTo(mb.Address),
	}}}
	res, err := a.opts.Store.DeliverRemote(ctx, m.Progress, m.State, m.Digest, d)
	if err != nil {
		return fmt.Errorf("file remote message %s: %w", id, err)
	}
	a.log.Info("pulled", "id", id, "mailbox", mb.ID, "folder", m.Folder, "from", m.Host,
		"uid", m.State.LastUID, "size", len(body))
	if res.Targets[0].QuotaWarning {
		a.sendQuotaWarning(ctx, dir, mb.ID, now)
	}
	return nil
}

// toCRLF turns bare LF line endings into CRLF. A message without any is
// returned as it is.
func toCRLF(b []byte) []byte {
	bare := bytes.Count(b, []byte("\n")) - bytes.Count(b, []byte("\r\n"))
	if bare == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+bare)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}
