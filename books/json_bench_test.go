package books

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"gatehouse/storage"
)

// benchPage is a full page of books, with every string escape appendString
// knows among the titles.
func benchPage() []storage.Book {
	year := 1965
	now := time.Date(2026, 11, 23, 4, 30, 0, 123456000, time.UTC)
	titles := []string{"Dune", `Quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\r\b\f\x01\x1f", "line\u2028para\u2029", "bad \xff utf-8 \xe2\x82", "Café 東京 🚀"}
	books := make([]storage.Book, 20)
	for i := range books {
		books[i] = storage.Book{ID: storage.NewID(), UserID: "u", Title: titles[i%len(titles)], Author: "Frank Herbert", CreatedAt: now, UpdatedAt: now.Add(time.Duration(i) * time.Second)}
		if i%3 != 0 {
			books[i].Year = &year
		}
	}
	return books
}

// BenchmarkPage encodes a page of 20 books as the list endpoint does,
// after checking that the bytes are encoding/json's.
func BenchmarkPage(b *testing.B) {
	books := benchPage()
	for _, next := range []string{"", "Y3Vyc29y"} {
		want := pageJSON{Books: []bookJSON{}, NextCursor: next}
		for _, bk := range books {
			want.Books = append(want.Books, newBookJSON(bk))
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(want); err != nil {
			b.Fatal(err)
		}
		if got := appendPage(nil, books, next); !bytes.Equal(got, buf.Bytes()) {
			b.Fatalf("appendPage wrote\n%s\nencoding/json writes\n%s", got, buf.Bytes())
		}
	}
	if got := string(appendPage(nil, nil, "")); got != "{\"books\":[]}\n" {
		b.Fatalf("empty page: %q", got)
	}
	b.ReportAllocs()
	buf := make([]byte, 0, 8192)
	for b.Loop() {
		buf = appendPage(buf[:0], books, "")
	}
}

// BenchmarkPageReflect is the same page through encoding/json, for
// comparison.
func BenchmarkPageReflect(b *testing.B) {
	books := benchPage()
	b.ReportAllocs()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		p := pageJSON{Books: make([]bookJSON, len(books))}
		for i, bk := range books {
			p.Books[i] = newBookJSON(bk)
		}
		if err := json.NewEncoder(&buf).Encode(p); err != nil {
			b.Fatal(err)
		}
	}
}
