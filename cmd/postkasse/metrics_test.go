package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	gosmtp "github.com/emersion/go-smtp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serveMetricsListener starts listen.metrics on the running test server.
func (ts *testServer) serveMetricsListener() string {
	ts.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.srv.serveMetrics(ln)
	return "http://" + ln.Addr().String()
}

// scrape reads /metrics and returns each sample as name{labels} -> value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = sampleValue(f.GetType(), m)
		}
	}
	return out
}

func sampleValue(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

func healthz(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricsAndHealth: the scrape parses; the local delivery counter
// moves by exactly the number of folders filed, logins and failed logins
// by one each; open connections and the queue are there; /healthz says
// 200 while serving and 503 while the server stops.
func TestMetricsAndHealth(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	base := ts.serveMetricsListener()
	if code := healthz(t, base); code != http.StatusOK {
		t.Fatalf("healthz while serving: %d", code)
	}
	before := scrape(t, base)
	const delivered = `postkasse_messages_delivered_total{destination="local"}`
	for i := range 3 {
		if err := ts.send("client@example.org", []string{"anna@contoso.test", "bo@contoso.test"}, message("client@example.org", "anna@contoso.test", fmt.Sprint("metrics ", i), "hi")); err != nil {
			t.Fatal(err)
		}
	}
	c := ts.login("anna@contoso.test", "anna-secret", nil)
	if _, err := ts.loginErr("anna@contoso.test", "wrong"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	after := scrape(t, base)
	if got := after[delivered] - before[delivered]; got != 6 {
		t.Errorf("%s moved by %v, want 6 (3 messages to 2 mailboxes)", delivered, got)
	}
	for key, want := range map[string]float64{
		`postkasse_logins_total{protocol="imap"}`:         1,
		`postkasse_login_failures_total{protocol="imap"}`: 1,
	} {
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s moved by %v, want %v", key, got, want)
		}
	}
	for _, key := range []string{`postkasse_connections_open{listener="imap"}`, "postkasse_store_size_bytes", "postkasse_store_commit_duration_seconds", `postkasse_connections_total{listener="smtp"}`} {
		if after[key] < 1 {
			t.Errorf("%s = %v", key, after[key])
		}
	}
	if v, ok := after["postkasse_queue_messages"]; !ok || v != 0 {
		t.Errorf("postkasse_queue_messages = %v (present %v)", v, ok)
	}
	if _, ok := after["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	c.Logout().Wait()

	// An SMTP transaction in flight holds the shutdown open: meanwhile
	// the server says it is not serving.
	open, err := gosmtp.Dial(ts.smtp)
	if err != nil {
		t.Fatal(err)
	}
	if err := open.Hello("client.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := open.Mail("client@example.org", nil); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		ts.stop()
		close(stopped)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for healthz(t, base) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("healthz never said 503 while stopping")
		}
		time.Sleep(10 * time.Millisecond)
	}
	open.Close()
	<-stopped
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the metrics listener outlived the server")
	}
}

// loginErr tries an IMAP login and returns its error.
func (ts *testServer) loginErr(user, pass string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(ts.imap, nil)
	if err != nil {
		return nil, err
	}
	ts.t.Cleanup(func() { c.Close() })
	return c, c.Login(user, pass).Wait()
}
