package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/metrics"
	"postkasse.dev/postkasse/store"
)

// startWithMetrics starts the server with its metrics served on a loopback
// port, as `serve` does with listen.metrics; it returns the base URL.
func startWithMetrics(t *testing.T, extra string, opts serverOptions) (*testServer, string) {
	t.Helper()
	opts.metrics = metrics.New(nil)
	ts := startServerWith(t, extra, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(serveMetrics(ln, opts.metrics, slog.New(slog.DiscardHandler)))
	return ts, "http://" + ln.Addr().String()
}

// scrape is one parsed scrape of /metrics.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, base string) scrape {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of name with labels given as
// "name=value" pairs; -1 when there is no such series.
func (s scrape) value(name string, labels ...string) float64 {
	fam := s[name]
	if fam == nil {
		return -1
	}
	for _, m := range fam.Metric {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for _, l := range labels {
		name, value, _ := strings.Cut(l, "=")
		if !slices.ContainsFunc(m.Label, func(p *dto.LabelPair) bool { return p.GetName() == name && p.GetValue() == value }) {
			return false
		}
	}
	return true
}

// waitMetric scrapes until the series has the value.
func waitMetric(t *testing.T, base string, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := scrapeMetrics(t, base).value(name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(100 * time.Millisecond) // a scrape costs CPU that other tests need
	}
}

// delta is how much a series should have moved between two scrapes.
type delta struct {
	name   string
	labels []string
	by     float64
}

func checkDeltas(t *testing.T, before, after scrape, want ...delta) {
	t.Helper()
	for _, d := range want {
		if got := after.value(d.name, d.labels...) - before.value(d.name, d.labels...); got != d.by {
			t.Errorf("%s%v moved by %v, want %v", d.name, d.labels, got, d.by)
		}
	}
}

// TestMetricsCountSMTP delivers and refuses over the MX port and reads the
// counters back from /metrics: each moves by exactly what the test did.
func TestMetricsCountSMTP(t *testing.T) {
	t.Parallel()
	ts, base := startWithMetrics(t, "", serverOptions{})
	before := scrapeMetrics(t, base)
	// One message to two local mailboxes: two copies.
	if err := ts.send("zoe@example.org", []string{"anna@contoso.test", "bo@contoso.test"}, message("zoe@example.org", "anna@contoso.test", "hello", "hi")); err != nil {
		t.Fatal(err)
	}
	if err := ts.send("zoe@example.org", []string{"nobody@contoso.test"}, message("zoe@example.org", "nobody@contoso.test", "lost", "hi")); smtpCode(err) != "550 5.1.1" {
		t.Fatalf("unknown recipient: %v, want 550 5.1.1", err)
	}
	after := scrapeMetrics(t, base)
	checkDeltas(t, before, after,
		delta{"postkasse_messages_delivered_total", nil, 2},
		delta{"postkasse_messages_received_total", []string{"listener=smtp"}, 1},
		delta{"postkasse_messages_refused_total", []string{"listener=smtp", "reason=unknown_recipient"}, 1},
		delta{"postkasse_messages_refused_total", []string{"listener=smtp", "reason=policy"}, 0},
		delta{"postkasse_recipients_queued_total", nil, 0},
		delta{"postkasse_connections_total", []string{"protocol=smtp"}, 2},
	)
	// Both backends time their commits (the delivery's is one of them)
	// and report their size: the bbolt file, or the PostgreSQL tables.
	const commits = "postkasse_store_commit_duration_seconds"
	if n := after.value(commits) - before.value(commits); n < 1 {
		t.Errorf("%v commits observed during a delivery, want at least 1", n)
	}
	if sum := after[commits].GetMetric()[0].GetHistogram().GetSampleSum(); sum <= 0 {
		t.Errorf("commits took %v s in all, want some time", sum)
	}
	if size := after.value("postkasse_store_size_bytes"); size <= 0 {
		t.Errorf("store size %v, want the store's bytes", size)
	}
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if after.value(name) <= 0 {
			t.Errorf("%s missing: the runtime and process collectors are not registered", name)
		}
	}
	// Label values come from fixed sets only.
	for _, m := range after["postkasse_messages_refused_total"].Metric {
		for _, l := range m.Label {
			if l.GetName() == "reason" && !slices.Contains(metrics.RefusalReasons(), l.GetValue()) {
				t.Errorf("refusal reason %q is outside the fixed set", l.GetValue())
			}
		}
	}
}

// TestMetricsCountIMAP: an IMAP session is counted open while it is, and a
// wrong password as a failed login.
func TestMetricsCountIMAP(t *testing.T) {
	t.Parallel()
	ts, base := startWithMetrics(t, "", serverOptions{})
	before := scrapeMetrics(t, base)
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	waitMetric(t, base, 1, "postkasse_connections_open", "protocol=imap")
	bad, err := imapclient.DialInsecure(ts.imap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Login("anna@contoso.test", "wrong").Wait(); err == nil {
		t.Fatal("wrong password accepted")
	}
	bad.Close()
	c.Close()
	waitMetric(t, base, 0, "postkasse_connections_open", "protocol=imap")
	checkDeltas(t, before, scrapeMetrics(t, base),
		delta{"postkasse_login_failures_total", []string{"protocol=imap", "reason=credentials"}, 1},
		delta{"postkasse_logins_total", []string{"protocol=imap"}, 1},
		delta{"postkasse_connections_total", []string{"protocol=imap"}, 2},
	)
}

// TestMetricsCountHTTP: an address-book request with good credentials is
// a login, one with a wrong password a failed login, and the connection is
// counted under http.
func TestMetricsCountHTTP(t *testing.T) {
	t.Parallel()
	ts, base := startWithMetrics(t, "", serverOptions{})
	before := scrapeMetrics(t, base)
	if code, _, _ := ts.davDo("anna@contoso.test", "wrong", "PROPFIND", "/dav/", "", nil, "Depth", "0"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", code)
	}
	if code, _, _ := ts.davDo("anna@contoso.test", "anna-secret", "PROPFIND", "/dav/", "", nil, "Depth", "0"); code >= 400 {
		t.Fatalf("good password: %d", code)
	}
	after := scrapeMetrics(t, base)
	checkDeltas(t, before, after,
		delta{"postkasse_login_failures_total", []string{"protocol=http", "reason=credentials"}, 1},
		delta{"postkasse_logins_total", []string{"protocol=http"}, 1},
	)
	if n := after.value("postkasse_connections_total", "protocol=http"); n < 1 {
		t.Errorf("postkasse_connections_total{http} = %v, want at least 1", n)
	}
}

// TestMetricsQueueGauges submits to a remote address whose server is
// down: the recipient is queued and deferred, and the queue gauges show
// the message waiting.
func TestMetricsQueueGauges(t *testing.T) {
	t.Parallel()
	zone := newDNSZone(t, "fabrikam.example. MX 10 mx.fabrikam.example.", "mx.fabrikam.example. A 127.0.0.1")
	_, closed, _ := net.SplitHostPort(freePort(t))
	port, _ := strconv.Atoi(closed)
	ts, base := startWithMetrics(t, fmt.Sprintf("[outbound]\nresolver = %q\nretry_after = \"1h\"\n", zone.addr), serverOptions{queuePort: port})
	before := scrapeMetrics(t, base)
	sent := time.Now()
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", []string{"partner@fabrikam.example"},
		message("anna@contoso.test", "partner@fabrikam.example", "offer", "hi")); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, base, 1, "postkasse_recipients_deferred_total")
	after := scrapeMetrics(t, base)
	if q := after.value("postkasse_queue_messages"); q != 1 {
		t.Errorf("postkasse_queue_messages = %v, want 1", q)
	}
	if age := after.value("postkasse_queue_oldest_age_seconds"); age < 0 || age > time.Since(sent).Seconds()+1 {
		t.Errorf("postkasse_queue_oldest_age_seconds = %v, want between 0 and %v", age, time.Since(sent).Seconds())
	}
	checkDeltas(t, before, after,
		delta{"postkasse_recipients_queued_total", nil, 1},
		delta{"postkasse_messages_delivered_total", nil, 0},
		delta{"postkasse_messages_received_total", []string{"listener=submission"}, 1},
		delta{"postkasse_logins_total", []string{"protocol=submission"}, 1},
		delta{"postkasse_recipients_sent_total", nil, 0},
	)
}

// TestMetricsCountSentAndBounced sends to a remote server that takes one
// recipient and refuses the other: one sent, one bounced, and the bounce
// filed locally.
func TestMetricsCountSentAndBounced(t *testing.T) {
	t.Parallel()
	sk := newSink(t, "127.0.0.1")
	_, portStr, _ := net.SplitHostPort(sk.addr)
	port, _ := strconv.Atoi(portStr)
	zone := newDNSZone(t, "fabrikam.example. MX 10 mx.fabrikam.example.", "mx.fabrikam.example. A 127.0.0.1")
	ts, base := startWithMetrics(t, fmt.Sprintf("[outbound]\nresolver = %q\nretry_after = \"1h\"\n", zone.addr), serverOptions{queuePort: port})
	to := []string{"partner@fabrikam.example", "reject-me@fabrikam.example"}
	if err := ts.submit("anna@contoso.test", "anna-secret", "anna@contoso.test", to, message("anna@contoso.test", to[0], "proposal", "hi")); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, base, 1, "postkasse_recipients_bounced_total")
	waitMetric(t, base, 0, "postkasse_queue_messages")
	after := scrapeMetrics(t, base)
	for name, want := range map[string]float64{
		"postkasse_recipients_queued_total":   2,
		"postkasse_recipients_sent_total":     1,
		"postkasse_recipients_deferred_total": 0,
		"postkasse_messages_delivered_total":  1, // the failure notice, in anna's INBOX
	} {
		if got := after.value(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestHealthzFollowsTheServersLife runs `postkasse serve` with
// listen.metrics: /healthz says 503 while the server starts (its store is
// held by another process), 200 while it serves, and 503 again while it
// stops (an SMTP transaction in flight holds the shutdown open).
func TestHealthzFollowsTheServersLife(t *testing.T) {
	t.Parallel()
	cfgPath, smtpAddr, _, text := childConfig(t)
	metricsAddr := freePort(t)
	writeFile(t, cfgPath, strings.Replace(text, "[listen]\n", fmt.Sprintf("[listen]\nmetrics = %q\n", metricsAddr), 1))
	cfg := loadConfig(t, cfgPath)
	held := holdStore(t, cfg)

	child := startServeChild(t, cfgPath)
	base := "http://" + metricsAddr
	waitHealth(t, base, http.StatusServiceUnavailable, "starting")
	held.Close()
	waitHealth(t, base, http.StatusOK, "serving")

	conn, r := smtpDialog(t, smtpAddr)
	defer conn.Close()
	for _, step := range []struct{ send, want string }{
		{"EHLO client.example.org", "250"},
		{"MAIL FROM:<zoe@example.org>", "250"},
		{"RCPT TO:<anna@contoso.test>", "250"},
		{"DATA", "354"},
	} {
		fmt.Fprintf(conn, "%s\r\n", step.send)
		r.expect(t, step.want)
	}
	fmt.Fprint(conn, "Subject: in flight\r\n\r\nfirst half\r\n")
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, base, http.StatusServiceUnavailable, "stopping")
	if got := scrapeMetrics(t, base).value("postkasse_connections_open", "protocol=smtp"); got != 1 {
		t.Errorf("while stopping: postkasse_connections_open{smtp} = %v, want 1", got)
	}
	fmt.Fprint(conn, "second half\r\n.\r\n")
	r.expect(t, "250")
	if err := waitExit(child, 40*time.Second); err != nil {
		t.Fatalf("server exit: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("metrics still served after the server exited")
	}
}

// waitHealth polls /healthz until it answers code with body.
func waitHealth(t *testing.T, base string, code int, body string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := "no answer"
	client := &http.Client{Timeout: 5 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			b := make([]byte, 64)
			n, _ := resp.Body.Read(b)
			resp.Body.Close()
			got := strings.TrimSpace(string(b[:n]))
			if resp.StatusCode == code && got == body {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/healthz: last answer %s, want %d %s", last, code, body)
}

func waitExit(cmd *exec.Cmd, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return fmt.Errorf("did not exit within %v", limit)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func loadConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// holdStore opens the server's store in the test, so a server that starts
// waits for it.
func holdStore(t *testing.T, cfg *config.Config) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Path: storePath(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startServeChild runs `postkasse serve` in a child process without
// waiting for it to be ready.
func startServeChild(t *testing.T, cfgPath string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "POSTKASSE_TEST_ARGS=serve\x1f-config\x1f"+cfgPath)
	logFile, err := os.Create(filepath.Join(filepath.Dir(cfgPath), "child.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr, cmd.Stdout = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("server log:\n%s", b)
		}
	})
	return cmd
}

// smtpReader reads SMTP replies.
type smtpReader struct{ *bufio.Reader }

// expect reads one (possibly multi-line) reply and fails unless it has code.
func (r smtpReader) expect(t *testing.T, code string) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for %s: %v", code, err)
		}
		if strings.HasPrefix(line, code+" ") {
			return
		}
		if !strings.HasPrefix(line, code+"-") {
			t.Fatalf("got %q, want %s", line, code)
		}
	}
}

// smtpDialog connects to addr and reads the greeting.
func smtpDialog(t *testing.T, addr string) (net.Conn, smtpReader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := smtpReader{bufio.NewReader(conn)}
	r.expect(t, "220")
	return conn, r
}

// TestOnlyMetricsImportsPrometheus: the Prometheus client stays in package
// metrics (and main, which wires it); metrics itself knows none of the
// packages it counts for.
func TestOnlyMetricsImportsPrometheus(t *testing.T) {
	t.Parallel()
	const mod = "postkasse.dev/postkasse/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		switch pkg {
		case mod + "metrics":
			for _, d := range deps {
				if strings.HasPrefix(d, mod) {
					t.Errorf("metrics imports %s", d)
				}
			}
		case mod + "cmd/postkasse":
		default:
			for _, d := range deps {
				if strings.HasPrefix(d, "github.com/prometheus/") {
					t.Errorf("%s imports %s", pkg, d)
				}
			}
		}
	}
}
