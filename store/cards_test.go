package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCardsKeepBytesAndReportChanges(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	book := Book{Account: "anna", Name: "contacts"}
	other := Book{Account: "anna", Name: "contacts2"}
	now := time.Unix(1700000000, 0)
	data := []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n")
	a, created, err := s.PutCard(ctx, book, "a.vcf", data, "", now)
	if err != nil || !created || a.Stamp != 1 {
		t.Fatalf("put: %+v %v %v", a, created, err)
	}
	if _, _, err := s.PutCard(ctx, other, "x.vcf", data, "", now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutCard(ctx, book, "a.vcf", data, "wrong", now); !errors.Is(err, ErrConflict) {
		t.Fatalf("put with a stale ETag: %v, want ErrConflict", err)
	}
	if _, _, err := s.PutCard(ctx, book, "b.vcf", data, "", now); err != nil {
		t.Fatal(err)
	}
	got, err := s.Card(ctx, book, "a.vcf")
	if err != nil || string(got.Data) != string(data) || got.ETag != a.ETag {
		t.Fatalf("card: %+v %v", got, err)
	}
	if err := s.DeleteCard(ctx, book, "a.vcf", a.ETag, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Card(ctx, book, "a.vcf"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted card: %v", err)
	}
	changes, n, err := s.CardChanges(ctx, book, 1)
	if err != nil || n != 3 || len(changes) != 2 {
		t.Fatalf("changes since 1: %+v now %d %v", changes, n, err)
	}
	if changes[0].Name != "a.vcf" || !changes[0].Deleted || changes[1].Name != "b.vcf" {
		t.Errorf("changes: %+v", changes)
	}
	cards, err := s.Cards(ctx, book)
	if err != nil || len(cards) != 1 || cards[0].Name != "b.vcf" {
		t.Errorf("cards: %+v %v", cards, err)
	}
}
