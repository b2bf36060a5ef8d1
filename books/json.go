package books

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/storage"
)

// maxBody is the largest request body read; more is 413.
const maxBody = 1 << 20

const (
	maxTitle  = 300
	maxAuthor = 200
	// Four-digit years either side of year zero; anything wider is a typo.
	minYear = -9999
	maxYear = 9999
)

// fieldRules holds the rule each body field breaks when its value is wrong;
// decodeError also uses it to tell a field from the body as a whole.
var fieldRules = map[string]string{
	"title":  "must be 1-300 characters",
	"author": "must be at most 200 characters",
	"year":   "must be an integer from -9999 to 9999, or null",
}

var (
	errNoUser               = errors.New("the access token acts for no user")
	errUnsupportedMediaType = errors.New("content type must be application/json")
)

// requestError is a 400: the query or the body is wrong. field names the
// parameter or JSON field at fault, "" when it is the body as a whole.
type requestError struct {
	field string
	msg   string
}

func (e *requestError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

// methodError is a 405; allow lists the methods the path does take.
type methodError struct {
	allow string
}

func (e *methodError) Error() string {
	return "method not allowed; use " + e.allow
}

type bookJSON struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Author    string `json:"author"`
	Year      *int   `json:"year"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func newBookJSON(b storage.Book) bookJSON {
	return bookJSON{
		ID:        b.ID,
		Title:     b.Title,
		Author:    b.Author,
		Year:      b.Year,
		CreatedAt: b.CreatedAt.UTC().Format(time.RFC3339Nano),
		UpdatedAt: b.UpdatedAt.UTC().Format(time.RFC3339Nano),
	}
}

// pageJSON is the shape of a list response, which appendPage writes.
type pageJSON struct {
	Books      []bookJSON `json:"books"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

type errorJSON struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// bookInput is the body of POST and PUT. A PUT replaces the book, so absent
// fields become "" and null.
type bookInput struct {
	Title  string `json:"title"`
	Author string `json:"author"`
	Year   *int   `json:"year"`
}

// readBook checks the content type and reads and decodes the body.
func readBook(w http.ResponseWriter, r *http.Request) (bookInput, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return bookInput{}, errUnsupportedMediaType
	}
	// JSON is UTF-8 (RFC 8259 §8.1); a body declared otherwise is refused
	// rather than misread.
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return bookInput{}, errUnsupportedMediaType
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return bookInput{}, err
		}
		return bookInput{}, &requestError{msg: "request body could not be read"}
	}
	return decodeBook(body)
}

// decodeBook parses and validates a book body. Every error it returns is a
// *requestError.
func decodeBook(body []byte) (bookInput, error) {
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD.
	if !utf8.Valid(body) {
		return bookInput{}, &requestError{msg: "request body is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	// A pointer, so that a body of null is told apart from {}.
	var in *bookInput
	if err := dec.Decode(&in); err != nil {
		return bookInput{}, decodeError(err, len(body))
	}
	if in == nil {
		return bookInput{}, &requestError{msg: "request body must be a JSON object"}
	}
	if rest := bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return bookInput{}, &requestError{msg: fmt.Sprintf(
			"request body has data after the JSON object (offset %d)", len(body)-len(rest))}
	}
	if err := in.validate(); err != nil {
		return bookInput{}, err
	}
	return *in, nil
}

func decodeError(err error, size int) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	if errors.As(err, &syntax) {
		return &requestError{msg: fmt.Sprintf("request body is not valid JSON: %v (offset %d)", syntax, syntax.Offset)}
	}
	if errors.As(err, &typ) {
		if msg, known := fieldRules[typ.Field]; known {
			return &requestError{field: typ.Field, msg: msg}
		}
		return &requestError{msg: "request body must be a JSON object"}
	}
	switch {
	case errors.Is(err, io.EOF):
		return &requestError{msg: "request body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &requestError{msg: fmt.Sprintf("request body is not valid JSON: unexpected end (offset %d)", size)}
	}
	// encoding/json reports unknown fields only in the message text.
	if quoted, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, err := strconv.Unquote(quoted); err == nil {
			return &requestError{msg: fmt.Sprintf("unknown field %q", name)}
		}
	}
	return &requestError{msg: "request body is not valid JSON"}
}

func (in *bookInput) validate() error {
	if n := utf8.RuneCountInString(in.Title); n < 1 || n > maxTitle {
		return &requestError{field: "title", msg: fieldRules["title"]}
	}
	if strings.TrimSpace(in.Title) == "" {
		return &requestError{field: "title", msg: "must not be blank"}
	}
	if utf8.RuneCountInString(in.Author) > maxAuthor {
		return &requestError{field: "author", msg: fieldRules["author"]}
	}
	// Both are single-line text, and PostgreSQL cannot store NUL in text.
	if strings.ContainsFunc(in.Title, unicode.IsControl) {
		return &requestError{field: "title", msg: "must not contain control characters"}
	}
	if strings.ContainsFunc(in.Author, unicode.IsControl) {
		return &requestError{field: "author", msg: "must not contain control characters"}
	}
	if in.Year != nil && (*in.Year < minYear || *in.Year > maxYear) {
		return &requestError{field: "year", msg: fieldRules["year"]}
	}
	return nil
}

// writeError answers every failure of the API. Errors it does not recognize
// are logged here, once, and hidden from the client.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		reqErr    *requestError
		tooBig    *http.MaxBytesError
		methodErr *methodError
	)
	switch {
	case errors.As(err, &reqErr):
		writeJSON(w, http.StatusBadRequest, errorJSON{"invalid_request", reqErr.Error()})
	case errors.Is(err, storage.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorJSON{"not_found", "book not found"})
	case errors.Is(err, errNoUser):
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errorJSON{"invalid_token", errNoUser.Error()})
	case errors.Is(err, errUnsupportedMediaType):
		writeJSON(w, http.StatusUnsupportedMediaType, errorJSON{"unsupported_media_type", errUnsupportedMediaType.Error()})
	case errors.As(err, &tooBig):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorJSON{"request_too_large",
			fmt.Sprintf("request body must be at most %d bytes", tooBig.Limit)})
	case errors.As(err, &methodErr):
		w.Header().Set("Allow", methodErr.allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorJSON{"method_not_allowed", methodErr.Error()})
	default:
		// The query is left out of the log: it may carry an access_token.
		h.Logger.ErrorContext(r.Context(), "books request failed",
			"method", r.Method, "path", r.URL.Path, "error", err)
		writeJSON(w, http.StatusInternalServerError, errorJSON{"server_error", "internal server error"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	setJSONHeaders(w)
	w.WriteHeader(status)
	// A failed write means the client has gone; no one is left to tell.
	_ = json.NewEncoder(w).Encode(v)
}

func setJSONHeaders(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniff
}

// Header values every JSON answer shares rather than a fresh slice per
// header and response, as Header.Set makes. Nothing writes into a
// header's slice: Set and Del replace it, and Add appends to a copy, its
// capacity being its length.
var (
	jsonType = []string{"application/json"}
	noStore  = []string{"no-store"}
	nosniff  = []string{"nosniff"}
)

// writePage answers a list request with a page appendPage encoded.
func writePage(w http.ResponseWriter, page []byte) {
	setJSONHeaders(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(page)
}

// appendPage appends the bytes encoding/json would write for a pageJSON,
// without reflection: the page is the response on the hot path of every
// API client. An empty page is [], never null.
func appendPage(b []byte, books []storage.Book, next string) []byte {
	b = append(b, `{"books":[`...)
	for i, bk := range books {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, bk.ID)
		b = append(b, `,"title":`...)
		b = appendString(b, bk.Title)
		b = append(b, `,"author":`...)
		b = appendString(b, bk.Author)
		b = append(b, `,"year":`...)
		if bk.Year == nil {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendInt(b, int64(*bk.Year), 10)
		}
		b = append(b, `,"created_at":"`...)
		b = bk.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","updated_at":"`...)
		b = bk.UpdatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `"}`...)
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendString(b, next)
	}
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string escaped exactly as encoding/json
// escapes it: control characters, the HTML-sensitive <, > and &, U+2028
// and U+2029, and invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
