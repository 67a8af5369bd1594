package queue

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"postkasse.dev/postkasse/store"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		first    time.Duration
		attempts int
		jitter   float64
		want     time.Duration
	}{
		{5 * time.Minute, 1, 0, 5 * time.Minute},
		{5 * time.Minute, 2, 0, 10 * time.Minute},
		{5 * time.Minute, 4, 0, 40 * time.Minute},
		{5 * time.Minute, 5, 0, time.Hour}, // 80m capped
		{5 * time.Minute, 1000, 0, time.Hour},
		{5 * time.Minute, 1, 1, 5*time.Minute + 30*time.Second},
		{5 * time.Minute, 1, -1, 5*time.Minute - 30*time.Second},
		{5 * time.Minute, 5, 1, time.Hour + 6*time.Minute},
		{5 * time.Minute, 1, 7, 5*time.Minute + 30*time.Second}, // jitter is clamped
		{3 * time.Hour, 1, 0, time.Hour},
		{5 * time.Minute, 0, 0, 5 * time.Minute},
	}
	for _, tt := range tests {
		if got := backoff(tt.first, tt.attempts, tt.jitter); got != tt.want {
			t.Errorf("backoff(%v, %d, %v) = %v, want %v", tt.first, tt.attempts, tt.jitter, got, tt.want)
		}
	}
}

func TestNextAttemptStopsAtExpiry(t *testing.T) {
	t.Parallel()
	r, err := New(Options{Storage: newFakeStorage(time.Now), Hostname: "h", Bounces: &fakeSubmitter{},
		RetryAfter: time.Hour, Lifetime: 10 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		now     time.Time
		wantMin time.Time
		wantMax time.Time
	}{
		{"early", created, created.Add(54 * time.Minute), created.Add(66 * time.Minute)},
		{"near expiry", created.Add(9*time.Hour + 30*time.Minute), created.Add(10 * time.Hour), created.Add(10 * time.Hour)},
		{"past expiry backs off", created.Add(11 * time.Hour), created.Add(11*time.Hour + 54*time.Minute), created.Add(12*time.Hour + 6*time.Minute)},
	}
	for _, tt := range tests {
		got := r.nextAttempt(created, tt.now, 3)
		if got.Before(tt.wantMin) || got.After(tt.wantMax) {
			t.Errorf("%s: next attempt %v, want in [%v, %v]", tt.name, got, tt.wantMin, tt.wantMax)
		}
	}
}

func TestReplyOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code     int
		enhanced gosmtp.EnhancedCode
		text     string
		want     outcome
	}{
		{550, gosmtp.EnhancedCode{5, 1, 1}, "No such user", outcome{failed, 550, "5.1.1", "No such user"}},
		{451, gosmtp.EnhancedCode{4, 3, 0}, "Later\nplease", outcome{deferred, 451, "4.3.0", "Later please"}},
		{554, gosmtp.EnhancedCodeNotSet, "Go away", outcome{failed, 554, "5.0.0", "Go away"}},
		{450, gosmtp.EnhancedCode{5, 1, 1}, "class mismatch", outcome{deferred, 450, "4.0.0", "class mismatch"}},
		{250, gosmtp.EnhancedCode{2, 0, 0}, "OK", outcome{delivered, 250, "2.0.0", "OK"}},
		{354, gosmtp.EnhancedCodeNotSet, "odd", outcome{deferred, 354, "4.0.0", "odd"}},
	}
	for _, tt := range tests {
		if got := replyOutcome(tt.code, tt.enhanced, tt.text); got != tt.want {
			t.Errorf("replyOutcome(%d, %v, %q) = %+v, want %+v", tt.code, tt.enhanced, tt.text, got, tt.want)
		}
	}
	o := errorOutcome(errors.New("connection reset"), "4.4.2")
	if o.result != deferred || o.remote() || o.reply() != "connection reset" || o.status != "4.4.2" {
		t.Errorf("network error: %+v", o)
	}
	o = errorOutcome(&gosmtp.SMTPError{Code: 552, EnhancedCode: gosmtp.EnhancedCode{5, 3, 4}, Message: "Too big"}, "4.4.2")
	if o.result != failed || o.reply() != "552 5.3.4 Too big" {
		t.Errorf("SMTP error: %+v", o)
	}
	o = errorOutcome(&gosmtp.SMTPError{Code: 250, Message: "OK"}, "4.4.2")
	if o.result != deferred || o.remote() || o.status != "4.4.2" {
		t.Errorf("success reply out of turn: %+v", o)
	}
	if o := successOutcome("2.6.0 Queued as 42"); o.status != "2.6.0" || o.text != "Queued as 42" || o.reply() != "250 2.6.0 Queued as 42" {
		t.Errorf("success: %+v", o)
	}
}

func TestParseReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reply      string
		wantCode   int
		wantStatus string
		wantOK     bool
	}{
		{"550 5.1.1 No such user", 550, "5.1.1", true},
		{"451 Try later", 451, "4.0.0", true},
		{"452 5.2.2 wrong class", 452, "4.0.0", true},
		{"connection refused", 0, "", false},
		{"127.0.0.1:25: refused", 0, "", false},
		{"999 9.9.9 nope", 0, "", false},
		{"55 5.1.1 short", 0, "", false},
		{"", 0, "", false},
	}
	for _, tt := range tests {
		code, status, ok := parseReply(tt.reply)
		if code != tt.wantCode || status != tt.wantStatus || ok != tt.wantOK {
			t.Errorf("parseReply(%q) = %d %q %v, want %d %q %v", tt.reply, code, status, ok, tt.wantCode, tt.wantStatus, tt.wantOK)
		}
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	if got := oneLine("a\r\nb\tc\x00d  e"); got != "a b c d e" {
		t.Errorf("oneLine = %q", got)
	}
	long := oneLine(strings.Repeat("é", 300))
	if len(long) > 404 || !strings.HasSuffix(long, "...") || !strings.HasPrefix(long, "é") {
		t.Errorf("long text cut badly: %d bytes", len(long))
	}
	if strings.ContainsRune(strings.TrimSuffix(long, "..."), '\uFFFD') {
		t.Error("cut inside a UTF-8 sequence")
	}
}

func TestGroupRecipients(t *testing.T) {
	t.Parallel()
	m := store.QueuedMessage{Recipients: []store.QueuedRecipient{
		{Address: "a@Contoso.test"},
		{Address: "b@fabrikam.example"},
		{Address: "done@contoso.test", State: store.RecipientDelivered},
		{Address: "c@contoso.TEST"},
		{Address: "no-domain@"},
		{Address: "plain"},
	}}
	groups, bad := groupRecipients(m, "")
	want := []group{
		{key: "contoso.test", rcpts: []string{"a@Contoso.test", "c@contoso.TEST"}, idx: []int{0, 3}},
		{key: "fabrikam.example", rcpts: []string{"b@fabrikam.example"}, idx: []int{1}},
	}
	if !slices.EqualFunc(groups, want, func(a, b group) bool {
		return a.key == b.key && slices.Equal(a.rcpts, b.rcpts) && slices.Equal(a.idx, b.idx)
	}) || !slices.Equal(bad, []int{4, 5}) {
		t.Errorf("groups %+v bad %v", groups, bad)
	}
	groups, _ = groupRecipients(m, "relay:587")
	if len(groups) != 1 || groups[0].key != "relay:587" || len(groups[0].rcpts) != 3 {
		t.Errorf("smarthost groups %+v", groups)
	}
}

func TestAddressLiteral(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{"[192.0.2.1]", "192.0.2.1"},
		{"[IPv6:2001:db8::1]", "2001:db8::1"},
		{"[ipv6:2001:db8::1]", "2001:db8::1"},
		{"[2001:db8::1]", ""}, // IPv6 needs its tag
		{"[IPv6:192.0.2.1]", ""},
		{"192.0.2.1", ""},
		{"[192.0.2.1", ""},
		{"contoso.test", ""},
	}
	for _, tt := range tests {
		ip, ok := addressLiteral(tt.in)
		if got := ""; ok {
			got = ip.String()
			if got != tt.want {
				t.Errorf("addressLiteral(%q) = %q, want %q", tt.in, got, tt.want)
			}
		} else if tt.want != "" {
			t.Errorf("addressLiteral(%q) failed, want %q", tt.in, tt.want)
		}
	}
}

func TestHeaderOf(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("X-Long: "+strings.Repeat("x", 100)+"\r\n", 1000)
	tests := []struct {
		name, msg, want string
	}{
		{"ordinary", "From: a\r\nSubject: b\r\n\r\nbody\r\n", "From: a\r\nSubject: b\r\n"},
		{"header only", "From: a\r\n", "From: a\r\n"},
		{"no header", "\r\nbody", ""},
		{"empty", "", ""},
		{"one giant line", strings.Repeat("x", maxReturnedHeader+10), ""},
	}
	for _, tt := range tests {
		if got := string(headerOf([]byte(tt.msg))); got != tt.want {
			t.Errorf("%s: headerOf = %q, want %q", tt.name, got, tt.want)
		}
	}
	got := headerOf([]byte(big + "\r\nbody"))
	if len(got) > maxReturnedHeader || !strings.HasSuffix(string(got), "\r\n") || !strings.HasPrefix(big, string(got)) {
		t.Errorf("long header cut to %d bytes, not at a line end", len(got))
	}
}

func TestParseEHLO(t *testing.T) {
	t.Parallel()
	ext := parseEHLO("mx.example greets you\nPIPELINING\nSIZE 1000\nstarttls\nAUTH LOGIN plain\n8BITMIME")
	for name, want := range map[string]bool{"PIPELINING": true, "STARTTLS": true, "SIZE": true, "AUTH": true, "SMTPUTF8": false, "MX.EXAMPLE": false} {
		if got := ext.has(name); got != want {
			t.Errorf("has(%q) = %v", name, got)
		}
	}
	if ext["SIZE"] != "1000" || !ext.auth("PLAIN") || ext.auth("CRAM-MD5") {
		t.Errorf("parameters: %q", ext)
	}
	if ext := parseEHLO("mx.example"); len(ext) != 0 {
		t.Errorf("a bare greeting offers %q", ext)
	}
}

func TestNewChecksOptions(t *testing.T) {
	t.Parallel()
	valid := func() Options {
		return Options{Storage: newFakeStorage(time.Now), Hostname: "mail.contoso.test", Bounces: &fakeSubmitter{}}
	}
	tests := []struct {
		name   string
		change func(*Options)
		want   string // part of the error, "" for none
	}{
		{"defaults", func(*Options) {}, ""},
		{"no storage", func(o *Options) { o.Storage = nil }, "no storage"},
		{"no bounces", func(o *Options) { o.Bounces = nil }, "no bounce submitter"},
		{"no hostname", func(o *Options) { o.Hostname = "" }, "no hostname"},
		{"smarthost without port", func(o *Options) { o.Smarthost = "relay.example" }, "smarthost"},
		{"unknown TLS mode", func(o *Options) { o.Smarthost = "relay:25"; o.SmarthostTLS = "maybe" }, "TLS mode"},
		{"credentials without TLS", func(o *Options) {
			o.Smarthost, o.SmarthostTLS, o.SmarthostUsername = "relay:25", SmarthostPlain, "u"
		}, "only sent over TLS"},
		{"resolver without port", func(o *Options) { o.Resolver = "127.0.0.1" }, "resolver"},
		{"bad port", func(o *Options) { o.Port = 70000 }, "port"},
	}
	for _, tt := range tests {
		o := valid()
		tt.change(&o)
		r, err := New(o)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one about %q", tt.name, err, tt.want)
		case tt.want == "":
			got := r.opts
			if got.Port != 25 || got.RetryAfter != DefaultRetryAfter || got.Lifetime != DefaultLifetime ||
				got.DelayWarning != DefaultDelayWarning || got.Concurrency != 8 || got.SmarthostTLS != SmarthostMay {
				t.Errorf("defaults not applied: %+v", got)
			}
		}
	}
}

// TestImports keeps the package doc comment true.
func TestImports(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"postkasse.dev/postkasse/queue": true, "postkasse.dev/postkasse/store": true,
		"postkasse.dev/postkasse/resolver":           true,
		"postkasse.dev/postkasse/internal/fileowner": true, // through store
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "postkasse.dev/postkasse/") && !allowed[dep] {
			t.Errorf("queue imports %s", dep)
		}
	}
}

// The store is what main hands the runner.
var _ Storage = (*store.Store)(nil)
