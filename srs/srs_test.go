package srs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	secret = []byte("a long random secret for tests")
	now    = time.Date(2027, time.January, 5, 12, 0, 0, 0, time.UTC)
)

func TestForwardAndReverse(t *testing.T) {
	t.Parallel()
	r := New(secret, "Contoso.Test")
	tests := []struct {
		sender     string
		wantPrefix string // of the rewritten address
		wantBack   string // what Reverse returns
	}{
		{"alice@fabrikam.example", "SRS0=", "alice@fabrikam.example"},
		{"Alice.Smith+tag@Fabrikam.Example", "SRS0=", "Alice.Smith+tag@Fabrikam.Example"},
		{"odd=local=part@fabrikam.example", "SRS0=", "odd=local=part@fabrikam.example"},
		{`"quoted@local"@fabrikam.example`, "SRS0=", `"quoted@local"@fabrikam.example`},
		// Another host's SRS0 becomes SRS1 naming that host; reversing
		// gives back the SRS0 address, for that host to reverse.
		{"SRS0=AbCd=XY=orig.example=bob@relay.example", "SRS1=", "SRS0=AbCd=XY=orig.example=bob@relay.example"},
		{"srs0+AbCd=XY=orig.example=bob@relay.example", "SRS1=", "SRS0+AbCd=XY=orig.example=bob@relay.example"},
		// Another host's SRS1 keeps its first host.
		{"SRS1=Zz9+=first.example==AbCd=XY=orig.example=bob@relay.example", "SRS1=", "SRS0=AbCd=XY=orig.example=bob@first.example"},
		// A malformed SRS1 is wrapped like any address.
		{"SRS1=nonsense@relay.example", "SRS0=", "SRS1=nonsense@relay.example"},
	}
	for _, tt := range tests {
		rewritten, err := r.Forward(tt.sender, now)
		if err != nil {
			t.Errorf("Forward(%q): %v", tt.sender, err)
			continue
		}
		if !strings.HasPrefix(rewritten, tt.wantPrefix) || !strings.HasSuffix(rewritten, "@contoso.test") || !IsSRS(rewritten) {
			t.Errorf("Forward(%q) = %q", tt.sender, rewritten)
		}
		// The case of the fields other than the hash does not matter.
		for _, variant := range []string{rewritten, strings.ToUpper(rewritten)} {
			back, err := r.Reverse(variant, now.Add(20*24*time.Hour))
			if err != nil || !strings.EqualFold(back, tt.wantBack) {
				t.Errorf("Reverse(%q) = %q, %v; want %q", variant, back, err, tt.wantBack)
			}
		}
		if back, _ := r.Reverse(rewritten, now); back != tt.wantBack {
			t.Errorf("Reverse(%q) = %q, want %q exactly", rewritten, back, tt.wantBack)
		}
	}
}

func TestForwardFormat(t *testing.T) {
	t.Parallel()
	r := New(secret, "contoso.test")
	got, err := r.Forward("alice@fabrikam.example", now)
	if err != nil {
		t.Fatal(err)
	}
	// Day 20823 since the epoch is slot 343 = 10<<5 | 23: "K" "X".
	fields := strings.Split(strings.TrimSuffix(got, "@contoso.test"), "=")
	if len(fields) != 5 || fields[0] != "SRS0" || len(fields[1]) != 10 || fields[2] != "KX" ||
		fields[3] != "fabrikam.example" || fields[4] != "alice" {
		t.Errorf("Forward = %q", got)
	}
	again, _ := r.Forward("ALICE@fabrikam.example", now)
	if again[5:15] != got[5:15] {
		t.Errorf("hash depends on case: %q vs %q", again, got)
	}
}

func TestForwardKeepsWhatNeedsNoRewrite(t *testing.T) {
	t.Parallel()
	r := New(secret, "contoso.test")
	tests := []struct{ sender, want string }{
		{"", ""},
		{"  ", ""},
		{"SRS0=abcd=KX=fabrikam.example=alice@contoso.test", "SRS0=abcd=KX=fabrikam.example=alice@contoso.test"},
		{"SRS1=abcd=x.example==abcd=KX=y.example=z@CONTOSO.test", "SRS1=abcd=x.example==abcd=KX=y.example=z@CONTOSO.test"},
	}
	for _, tt := range tests {
		if got, err := r.Forward(tt.sender, now); err != nil || got != tt.want {
			t.Errorf("Forward(%q) = %q, %v; want %q", tt.sender, got, err, tt.want)
		}
	}
	for _, bad := range []string{"postmaster", "@fabrikam.example", "alice@", "alice@a=b.example"} {
		if got, err := r.Forward(bad, now); err == nil {
			t.Errorf("Forward(%q) = %q, want an error", bad, got)
		}
	}
}

func TestReverseRefuses(t *testing.T) {
	t.Parallel()
	r := New(secret, "contoso.test")
	good, _ := r.Forward("alice@fabrikam.example", now)
	srs1, _ := r.Forward("SRS0=AbCd=XY=orig.example=bob@relay.example", now)
	hash := good[5:15]
	otherHash := "AAAAAAAAAA"
	if hash == otherHash {
		otherHash = "BBBBBBBBBB"
	}
	tests := []struct {
		name string
		addr string
		at   time.Time
		want error
	}{
		{"plain address", "alice@contoso.test", now, ErrNotSRS},
		{"no domain", "SRS0=abcd=KX=fabrikam.example=alice", now, ErrNotSRS},
		{"too few fields", "SRS0=abcd=KX=fabrikam.example@contoso.test", now, ErrNotSRS},
		{"empty user", "SRS0=abcd=KX=fabrikam.example=@contoso.test", now, ErrNotSRS},
		{"long stamp", "SRS0=abcd=KXY=fabrikam.example=alice@contoso.test", now, ErrNotSRS},
		{"malformed SRS1", "SRS1=abcd=host@contoso.test", now, ErrNotSRS},
		{"wrong hash", strings.Replace(good, hash, otherHash, 1), now, ErrBadHash},
		{"other secret", mustForward(t, New([]byte("another secret"), "contoso.test"), "alice@fabrikam.example"), now, ErrBadHash},
		{"changed user", strings.Replace(good, "=alice@", "=mallory@", 1), now, ErrBadHash},
		{"changed stamp", strings.Replace(good, "=KX=", "=KY=", 1), now, ErrBadHash},
		{"wrong SRS1 hash", strings.Replace(srs1, srs1[5:15], otherHash, 1), now, ErrBadHash},
		{"hash in lower case", strings.Replace(good, hash, strings.ToLower(hash), 1), now, ErrBadHash},
		{"old four-character hash", strings.Replace(good, hash, hash[:4], 1), now, ErrBadHash},
		{"hash one character short", strings.Replace(good, hash, hash[:9], 1), now, ErrBadHash},
		{"22 days old", good, now.Add(22 * 24 * time.Hour), ErrExpired},
		{"a cycle later and 22 days", good, now.Add((1024 + 22) * 24 * time.Hour), ErrExpired},
		{"from the future", good, now.Add(-2 * 24 * time.Hour), ErrExpired},
	}
	for _, tt := range tests {
		if got, err := r.Reverse(tt.addr, tt.at); !errors.Is(err, tt.want) {
			t.Errorf("%s: Reverse(%q) = %q, %v; want %v", tt.name, tt.addr, got, err, tt.want)
		}
	}
	if _, err := r.Reverse(good, now.Add(21*24*time.Hour)); err != nil {
		t.Errorf("21 days old: %v", err)
	}
}

// TestEveryHashChangeRefused: no other hash, however close, and no case
// change of it, reverses.
func TestEveryHashChangeRefused(t *testing.T) {
	t.Parallel()
	r := New(secret, "contoso.test")
	good := mustForward(t, r, "alice@fabrikam.example")
	hash := good[5:15]
	for i := range hash {
		for _, c := range base32 + strings.ToLower(base32) {
			if byte(c) == hash[i] {
				continue
			}
			bad := good[:5+i] + string(c) + good[5+i+1:]
			if _, err := r.Reverse(bad, now); !errors.Is(err, ErrBadHash) {
				t.Fatalf("Reverse(%q) = %v, want ErrBadHash", bad, err)
			}
		}
	}
}

func mustForward(t *testing.T, r *Rewriter, sender string) string {
	t.Helper()
	s, err := r.Forward(sender, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIsSRS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		{"SRS0=abcd=KX=fabrikam.example=alice@contoso.test", true},
		{"srs0+abcd=KX=fabrikam.example=alice@contoso.test", true},
		{"SRS1-x@contoso.test", true},
		{"SRS2=abcd@contoso.test", false},
		{"SRS0@contoso.test", false},
		{"SRS0xabc@contoso.test", false},
		{"SRS0=abc", false},
		{"alice@contoso.test", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsSRS(tt.addr); got != tt.want {
			t.Errorf("IsSRS(%q) = %t, want %t", tt.addr, got, tt.want)
		}
	}
}

func FuzzReverse(f *testing.F) {
	r := New(secret, "contoso.test")
	f.Add("SRS0=abcd=KX=fabrikam.example=alice@contoso.test", int64(0))
	f.Add(mustForwardF(r, "alice@fabrikam.example"), int64(3))
	f.Add(mustForwardF(r, "SRS0=AbCd=XY=orig.example=bob@relay.example"), int64(1))
	f.Add("SRS1==@", int64(-5))
	f.Add("srs0-===@x", int64(1<<40))
	f.Fuzz(func(t *testing.T, addr string, days int64) {
		at := now.Add(time.Duration(days%4096) * 24 * time.Hour)
		back, err := r.Reverse(addr, at)
		if err == nil && (!IsSRS(addr) || back == "") {
			t.Errorf("Reverse(%q) = %q without error", addr, back)
		}
	})
}

func mustForwardF(r *Rewriter, sender string) string {
	s, err := r.Forward(sender, now)
	if err != nil {
		panic(err)
	}
	return s
}

// FuzzRoundTrip checks that whatever Forward writes, Reverse reads back.
func FuzzRoundTrip(f *testing.F) {
	r := New(secret, "contoso.test")
	for _, s := range []string{"alice@fabrikam.example", "SRS0=x=y=z=w@relay.example", "a=b@c", "SRS1=h=a==x@b", "SRS1+0= =+@0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sender string) {
		rewritten, err := r.Forward(sender, now)
		if err != nil || rewritten == "" || strings.EqualFold(rewritten, strings.TrimSpace(sender)) {
			return
		}
		back, err := r.Reverse(rewritten, now)
		if err != nil {
			t.Fatalf("Reverse(Forward(%q) = %q): %v", sender, rewritten, err)
		}
		if !IsSRS(sender) && back != strings.TrimSpace(sender) {
			t.Errorf("Reverse(Forward(%q)) = %q", sender, back)
		}
		if again, err := r.Forward(back, now); err != nil || !IsSRS(again) {
			t.Errorf("Forward of reversed %q = %q, %v", back, again, err)
		}
	})
}
