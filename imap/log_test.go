package imap

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestServerLogLevels: go-imap's complaints about connections closed under
// a command are routine (DEBUG); anything else is a WARN.
func TestServerLogLevels(t *testing.T) {
	var buf bytes.Buffer
	l := slogPrintf{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Printf("handling IDLE command: %v", fmt.Errorf("write: %w", net.ErrClosed))
	l.Printf("failed to parse: %v", errors.New("bad syntax"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[1], "level=WARN") {
		t.Fatalf("log:\n%s", buf.String())
	}
}
