package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHealthz answers 200 only while serving, over real HTTP.
func TestHealthz(t *testing.T) {
	t.Parallel()
	m := New(nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	for _, c := range []struct {
		state State
		code  int
	}{{Starting, 503}, {Serving, 200}, {Stopping, 503}} {
		if c.state != Starting {
			m.SetState(c.state)
		}
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || strings.TrimSpace(string(body)) != c.state.String() {
			t.Errorf("%v: %d %q, want %d", c.state, resp.StatusCode, body, c.code)
		}
	}
}

// TestLabelsStayInTheirSets: a reason or listener outside the fixed sets
// is counted as "other", so callers cannot grow the series.
func TestLabelsStayInTheirSets(t *testing.T) {
	t.Parallel()
	m := New(nil)
	svc := m.Service("submissions")
	svc.Refused("<anna@contoso.test> no such user")
	svc.LoginFailed("anything")
	svc.LoggedIn()
	m.Service("imaps").LoggedIn()
	if got := testutil.ToFloat64(m.refused.WithLabelValues("submissions", "other")); got != 1 {
		t.Errorf("refused{submissions,other} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.loginFailures.WithLabelValues("submission", "other")); got != 1 {
		t.Errorf("login_failures{submission,other} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.logins.WithLabelValues("submission")); got != 1 {
		t.Errorf("logins{submission} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.logins.WithLabelValues("imap")); got != 1 {
		t.Errorf("logins{imap} = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.refused); n != len(listeners)*len(refusalReasons) {
		t.Errorf("%d refusal series, want %d (all made at start, no more)", n, len(listeners)*len(refusalReasons))
	}
}

// TestBigQueueIsReadAtMostOncePerInterval: a small queue is read at every
// scrape; a big one at most once per queueCacheFor.
func TestBigQueueIsReadAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	m := New(nil)
	now := time.Unix(1_800_000_000, 0)
	m.store.now = func() time.Time { return now }
	reads, length := 0, 3
	m.WatchStore(func(context.Context) (int, time.Time, error) {
		reads++
		return length, now.Add(-time.Minute), nil
	}, nil)
	scrape := func() float64 { return gathered(t, m, "postkasse_queue_messages") }
	scrape()
	scrape()
	if reads != 2 {
		t.Fatalf("small queue read %d times in 2 scrapes, want 2", reads)
	}
	length = bigQueue
	scrape()
	length = bigQueue + 1
	if got := scrape(); got != bigQueue || reads != 3 {
		t.Fatalf("big queue: %v after %d reads, want the cached %d after 3", got, reads, bigQueue)
	}
	now = now.Add(queueCacheFor)
	if got := scrape(); got != bigQueue+1 || reads != 4 {
		t.Fatalf("after %v: %v after %d reads, want %d after 4", queueCacheFor, got, reads, bigQueue+1)
	}
	if age := gathered(t, m, "postkasse_queue_oldest_age_seconds"); age != 60 {
		t.Errorf("oldest age %v, want 60", age)
	}
}

// gathered is the value of the gauge name in one gathering of m (which
// reads the queue once).
func gathered(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.Metric) == 1 {
			return f.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
