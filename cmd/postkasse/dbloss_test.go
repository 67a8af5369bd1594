package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/store/postgres/pgtest"
)

// replyBound is how long any SMTP transaction or IMAP command may take
// while the database is away: the server must answer, not hang.
const replyBound = 15 * time.Second

// storeUnavailable is the text of the SMTP and IMAP replies while the
// store cannot be reached.
const storeUnavailable = "Mail store temporarily unavailable, try again later"

// lossLoad is SMTP senders looping against a server and what they saw.
type lossLoad struct {
	mu      sync.Mutex
	acked   map[string]time.Time // Message-ID -> when it got its 250
	temp    int                  // 4xx replies
	replies map[string]int       // the 4xx replies' codes and texts
	bad     []string             // 5xx replies, other errors, slow answers
	lastAck time.Time
}

func (l *lossLoad) note(id string, err error, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var smtpErr *gosmtp.SMTPError
	switch {
	case took > replyBound:
		l.bad = append(l.bad, fmt.Sprintf("%s answered after %v (%v)", id, took, err))
	case err == nil:
		now := time.Now()
		l.acked[id], l.lastAck = now, now
	case errors.As(err, &smtpErr) && smtpErr.Code/100 == 4:
		l.temp++
		l.replies[fmt.Sprintf("%d %d.%d.%d %s", smtpErr.Code, smtpErr.EnhancedCode[0], smtpErr.EnhancedCode[1], smtpErr.EnhancedCode[2], refText(smtpErr.Message))]++
	default:
		l.bad = append(l.bad, fmt.Sprintf("%s: %v", id, err))
	}
}

func (l *lossLoad) counts() (acked, temp int, lastAck time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), l.temp, l.lastAck
}

// TestDatabaseLostUnderLoad stops the PostgreSQL server under the feet of
// a running postkasse while senders loop and an IMAP client polls, and
// starts it again (SPEC §13): meanwhile SMTP answers 4xx, never 5xx and
// never 250 for what is not stored, IMAP answers NO or BYE, nothing hangs;
// the server recovers by itself within 30 s of the database's return, and
// every message that got a 250 is found by IMAP afterwards.
func TestDatabaseLostUnderLoad(t *testing.T) {
	t.Parallel()
	cluster := pgtest.Own(t)
	testDatabaseLoss(t, cluster, cluster.Halt, cluster.Resume, 0)
}

// TestDatabaseHangsUnderLoad is TestDatabaseLostUnderLoad with a database
// that neither answers nor refuses (its processes stopped, as when the
// network drops its packets): the server gives up on each transaction
// after its bound (storeTxTimeout, here shortened to 3 s) and answers
// try-again-later rather than leaving clients waiting.
func TestDatabaseHangsUnderLoad(t *testing.T) {
	t.Parallel()
	cluster := pgtest.Own(t)
	testDatabaseLoss(t, cluster, cluster.Freeze, cluster.Thaw, 3*time.Second)
}

// testDatabaseLoss runs the load, takes the database away with lose and
// brings it back with restore; txTimeout replaces storeTxTimeout (0: not).
func testDatabaseLoss(t *testing.T, cluster *pgtest.Cluster, lose, restore func() error, txTimeout time.Duration) {
	dsn := pgtest.DB(t, cluster)
	remote := newDeferringSink(t)
	ts := startServerWith(t, fmt.Sprintf("[outbound]\nsmarthost = %q\nsmarthost_tls = \"none\"\nretry_after = \"1s\"\n", remote.addr)+
		fmt.Sprintf("\n[store]\nbackend = \"postgres\"\ndsn = %q\n", dsn), serverOptions{storeTxTimeout: txTimeout})
	// A test that fails with the database frozen must thaw it before the
	// server stops (a call may be waiting on the database) and before the
	// database is dropped (cleanups run last first).
	t.Cleanup(func() { cluster.Thaw() })
	// A message waits in the queue across the loss: the remote server
	// defers it until the database is gone.
	outbound := map[string]bool{"queued across the loss": true}
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"partner@fabrikam.example"},
		"From: anna@contoso.test\nTo: partner@fabrikam.example\nSubject: queued across the loss\n\nx\n"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the remote server deferring the queued message", func() bool { return remote.deferred.Load() > 0 })
	load := &lossLoad{acked: map[string]time.Time{}, replies: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				subject := fmt.Sprintf("loss %d %d", g, i)
				start := time.Now()
				err := ts.send("zoe@example.org", []string{"anna@contoso.test"}, message("zoe@example.org", "anna@contoso.test", subject, "x"))
				load.note(fmt.Sprintf("<loss-%d-%d@test>", g, i), err, time.Since(start))
			}
		}()
	}
	poller := newIMAPPoller(t, ts)
	wg.Add(1)
	go func() { defer wg.Done(); poller.run(stop) }()
	var once sync.Once
	stopLoad := func() { once.Do(func() { close(stop); wg.Wait() }) }
	// Likewise before waiting for the senders, which may be waiting on
	// the server.
	defer func() { cluster.Thaw(); stopLoad() }()
	// When the IDLE session last heard of new mail. Not a channel: a full
	// one would stop the client reading, and Close would wait for ever.
	var pushed atomic.Int64
	idler := ts.login("anna@contoso.test", "anna-secret", &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				pushed.Store(time.Now().UnixNano())
			}
		},
	})
	if _, err := idler.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}

	waitUntil(t, 20*time.Second, "20 messages acknowledged before the loss", func() bool {
		n, _, _ := load.counts()
		return n >= 20
	})
	if err := lose(); err != nil {
		t.Fatal(err)
	}
	halted := time.Now()
	// Away long enough for every part to notice: the pool, the change
	// listener, the queue runner.
	waitUntil(t, 20*time.Second, "4xx replies and IMAP refusals with the database down", func() bool {
		_, temp, _ := load.counts()
		return temp >= 8 && poller.refusals() >= 2 && time.Since(halted) > 3*time.Second
	})
	_, _, lastAck := load.counts()
	remote.deferring.Store(false)
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// The IDLE session opened before the loss hears of new mail again:
	// the change listener reconnected and caught up.
	for deadline := back.Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, _, last := load.counts()
		smtpOK, imapOK := last.After(back), poller.okSince(back)
		idleOK, queueOK := pushed.Load() > back.UnixNano(), len(received(remote.sink, outbound)) == 1
		if smtpOK && imapOK && idleOK && queueOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not working again within 30s of the database's return: SMTP %v, IMAP %v, IDLE %v, queue %v",
				smtpOK, imapOK, idleOK, queueOK)
		}
	}
	t.Logf("database away %v; last 250 %v after it was stopped, working again %v after it came back",
		back.Sub(halted).Round(time.Millisecond), lastAck.Sub(halted).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	stopLoad()
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}

	load.mu.Lock()
	defer load.mu.Unlock()
	for _, b := range append(load.bad, poller.bad()...) {
		t.Error(b)
	}
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	if _, err := c.Select("INBOX", &goimap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, m := range msgs {
		stored["<"+m.Envelope.MessageID+">"] = true
	}
	for id := range load.acked {
		if !stored[id] {
			t.Errorf("%s got a 250 but is not in the INBOX", id)
		}
	}
	t.Logf("%d acknowledged, %d 4xx, %d stored; SMTP replies meanwhile: %v", len(load.acked), load.temp, len(msgs), load.replies)
	t.Logf("IMAP: %d refusals: %v", poller.refusals(), poller.kinds())
	// Other 4xx replies would be right too, but the store's loss has its
	// own reply in both protocols (not an internal error under a logged
	// reference per command).
	if load.replies["451 4.3.0 "+storeUnavailable] == 0 {
		t.Errorf("no SMTP reply said the store is unavailable")
	}
	if poller.kinds()["SELECT and FETCH: NO [UNAVAILABLE] "+storeUnavailable] == 0 {
		t.Errorf("no IMAP reply said the store is unavailable")
	}
}

// imapPoller keeps an IMAP session busy (NOOP, STATUS, FETCH), logging
// in again after a BYE, and tells what it saw.
type imapPoller struct {
	t  *testing.T
	ts *testServer

	mu      sync.Mutex
	nos     int
	seen    map[string]int // refusals by text
	lastOK  time.Time
	badOnes []string
}

func newIMAPPoller(t *testing.T, ts *testServer) *imapPoller {
	return &imapPoller{t: t, ts: ts, seen: map[string]int{}}
}

func (p *imapPoller) run(stop <-chan struct{}) {
	var c *imapclient.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		if c == nil {
			var err error
			if c, err = imapclient.DialInsecure(p.ts.imap, nil); err != nil {
				p.note("dial", err, 0)
				continue
			}
			start := time.Now()
			if err := c.Login("anna@contoso.test", "anna-secret").Wait(); err != nil {
				p.note("LOGIN", err, time.Since(start))
				c.Close()
				c = nil
				continue
			}
		}
		start := time.Now()
		_, err := c.Select("INBOX", nil).Wait()
		if err == nil {
			_, err = c.Fetch(goimap.SeqSet{goimap.SeqRange{Start: 1, Stop: 0}}, &goimap.FetchOptions{UID: true, Flags: true}).Collect()
		}
		if p.note("SELECT and FETCH", err, time.Since(start)) {
			c.Close()
			c = nil
		}
	}
}

// note records a command's outcome; it tells whether the connection is
// gone (BYE or a broken connection) and must be dialled again.
func (p *imapPoller) note(what string, err error, took time.Duration) (gone bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var imapErr *goimap.Error
	switch {
	case took > replyBound:
		p.badOnes = append(p.badOnes, fmt.Sprintf("IMAP %s answered after %v (%v)", what, took, err))
	case err == nil:
		p.lastOK = time.Now()
	case errors.As(err, &imapErr) && imapErr.Type == goimap.StatusResponseTypeNo:
		p.nos++
		p.seen[fmt.Sprintf("%s: NO [%s] %s", what, imapErr.Code, refText(imapErr.Text))]++
	case errors.As(err, &imapErr) && imapErr.Type == goimap.StatusResponseTypeBye:
		p.nos++
		p.seen[what+": BYE "+imapErr.Text]++
		return true
	default:
		// A BYE closes the connection; the client may report that as the
		// closed connection rather than the BYE.
		p.nos++
		p.seen[what+": "+err.Error()]++
		return true
	}
	return false
}

func (p *imapPoller) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nos
}

func (p *imapPoller) okSince(t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastOK.After(t)
}

func (p *imapPoller) bad() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.badOnes)
}

func (p *imapPoller) kinds() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.seen)
}

// refText leaves the reference out of an internal error's text, so the
// refusals can be counted by kind.
func refText(text string) string {
	before, _, _ := strings.Cut(text, ", reference ")
	return before
}

// deferringSink is a remote server that answers RCPT with 451 while
// deferring is set.
type deferringSink struct {
	*sink
	deferring atomic.Bool
	deferred  atomic.Int32 // RCPTs it answered with 451
}

func newDeferringSink(t *testing.T) *deferringSink {
	t.Helper()
	d := &deferringSink{sink: &sink{got: make(chan struct{}, 100)}}
	d.deferring.Store(true)
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &deferringSession{sinkSession: &sinkSession{sink: d.sink, conn: c}, d: d}, nil
	}))
	srv.Domain = "sink.example"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return d
}

type deferringSession struct {
	*sinkSession
	d *deferringSink
}

func (s *deferringSession) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if s.d.deferring.Load() {
		s.d.deferred.Add(1)
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	return s.sinkSession.Rcpt(to, opts)
}
