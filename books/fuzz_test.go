package books

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"gatehouse/storage"
)

func FuzzDecodeBook(f *testing.F) {
	for _, seed := range []string{
		`{"title":"Dune","author":"Frank Herbert","year":1965}`,
		`{"title":"Dune","year":null}`,
		`{"title":"` + strings.Repeat("本", maxTitle) + `"}`,
		`{"title":"x","year":-9999}`,
		`{"title":"x","year":1e9}`,
		`{"title":"x","year":"1965"}`,
		`{"title":"x","year":19.65}`,
		`{"title":"x","year":99999999999999999999}`,
		`{"title":"x","isbn":"0441013597"}`,
		`{"title":"x"} trailing`,
		`{"title":"x"}{"title":"y"}`,
		`{"title":"\u0000"}`,
		`{"title":"\ud800"}`,
		`{"title":"   "}`,
		`{"TITLE":"x"}`,
		`{"title":"x","title":""}`,
		"{\"title\":\"\xff\"}",
		`{"title":`,
		`{"title":{"nested":[1,2]}}`,
		`[]`,
		`null`,
		`"x"`,
		``,
		` `,
	} {
		f.Add([]byte(seed))
	}
	fields := map[string]bool{"": true, "title": true, "author": true, "year": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := decodeBook(body)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v is not a *requestError", err, err)
			}
			if re.msg == "" || !fields[re.field] {
				t.Fatalf("error %q names field %q", re, re.field)
			}
			return
		}
		if n := utf8.RuneCountInString(in.Title); !utf8.ValidString(in.Title) || n < 1 || n > maxTitle ||
			strings.TrimSpace(in.Title) == "" || strings.ContainsFunc(in.Title, unicode.IsControl) {
			t.Fatalf("accepted title %q", in.Title)
		}
		if !utf8.ValidString(in.Author) || utf8.RuneCountInString(in.Author) > maxAuthor ||
			strings.ContainsFunc(in.Author, unicode.IsControl) {
			t.Fatalf("accepted author %q", in.Author)
		}
		if in.Year != nil && (*in.Year < minYear || *in.Year > maxYear) {
			t.Fatalf("accepted year %d", *in.Year)
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	for _, seed := range []string{
		"",
		encodeCursor(storage.NewID()),
		encodeCursor(strings.Repeat("0", idLen)),
		encodeCursor("not-an-id"),
		encodeCursor(strings.Repeat("0", idLen)) + "=",
		"!!",
		"AAAA",
		"MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA",
		"ZXA\n0ZXA0ZXA0ZXA0ZXA0ZXA0ZXA0ZXA0ZXA",
		"ZXA0ZXA0ZXA0ZXA0ZXA0ZXA0ZXA0ZXA0ZXB",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := decodeCursor(s)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.field != "cursor" {
				t.Fatalf("error %v does not name the cursor", err)
			}
			return
		}
		if s == "" {
			if id != "" {
				t.Fatalf("empty cursor decoded to %q", id)
			}
			return
		}
		if !wellFormedID(id) {
			t.Fatalf("cursor %q decoded to malformed ID %q", s, id)
		}
		if again := encodeCursor(id); again != s {
			t.Fatalf("cursor %q decoded to %q, which encodes as %q", s, id, again)
		}
	})
}
