package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"postkasse.dev/postkasse/store"
	"postkasse.dev/postkasse/store/storetest"
)

// TestConformance runs the backend-neutral suite against bbolt.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		path := filepath.Join(t.TempDir(), "mail.db")
		s, err := store.Open(context.Background(), store.Options{Path: path, Analyze: storetest.Analyze, SearchData: storetest.SearchData})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Check(); err != nil {
				t.Errorf("consistency check: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}
