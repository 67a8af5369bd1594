package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestNamesFollowConventions: promlint finds nothing to say about our
// metrics (units, _total on counters, help texts).
func TestNamesFollowConventions(t *testing.T) {
	t.Parallel()
	m := New(Options{
		Queue:     func(context.Context) (int, time.Time, error) { return 2, time.Now().Add(-time.Minute), nil },
		StoreSize: func() (int64, error) { return 1 << 20, nil },
	})
	m.Filed(1)
	m.Outbound("deferred")
	m.Login("imap", false)
	m.Connection("smtp")()
	m.Commit(time.Millisecond)
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	for _, tc := range []struct {
		serving bool
		want    int
	}{{false, http.StatusServiceUnavailable}, {true, http.StatusOK}, {false, http.StatusServiceUnavailable}} {
		m.SetServing(tc.serving)
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != tc.want {
			t.Errorf("serving %v: %d", tc.serving, rec.Code)
		}
	}
}
