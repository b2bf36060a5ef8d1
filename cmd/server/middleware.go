package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// securityHeaders go on every response: no page may be framed (consent
// must not be clickjacked), no script or style from anywhere but here, and
// no Referer carrying an authorization request's query to another site.
// With an https issuer, browsers are told to use nothing else for a year
// (HSTS), so a first plain-http request cannot be intercepted either.
func securityHeaders(https bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if https {
			h["Strict-Transport-Security"] = hstsValue
		}
		h["X-Frame-Options"] = frameOptionsValue
		h["Content-Security-Policy"] = cspValue
		h["Referrer-Policy"] = referrerPolicyValue
		h["X-Content-Type-Options"] = nosniffValue
		next.ServeHTTP(w, r)
	})
}

// The security headers' values, shared by every response instead of a
// fresh slice per header and request as Header.Set makes. Nothing writes
// into a header's slice: Set and Del replace it, Add appends to a copy (its
// capacity is its length).
var (
	hstsValue           = []string{"max-age=31536000"}
	frameOptionsValue   = []string{"DENY"}
	cspValue            = []string{"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"}
	referrerPolicyValue = []string{"no-referrer"}
	nosniffValue        = []string{"nosniff"}
)

// recoverPanics turns a panic into a logged 500 instead of a dropped
// connection. No endpoint should reach it.
func recoverPanics(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "panic", "value", fmt.Sprint(v), "stack", string(debug.Stack()))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// withLogging logs one line per request: an id, the method, the route
// pattern (never the raw URL, whose query may hold a code or token), the
// status and the duration. It feeds the request metrics too, sharing the
// status recorder. Answers below 500 are logged at debug: at the default
// level a busy server spends nothing on lines that report nothing wrong
// (the metrics count every request), while each server error is still
// logged with its id.
func withLogging(logger *slog.Logger, m *metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var id [8]byte
		rand.Read(id[:])
		rid := hex.EncodeToString(id[:])
		w.Header()["X-Request-Id"] = []string{rid} // canonical already
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		if rec.status == 0 {
			// net/http answers 200 for a handler that wrote nothing.
			rec.status = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.observe(route, rec.status, elapsed)
		level := slog.LevelDebug
		if rec.status >= 500 {
			level = slog.LevelError
		}
		if !logger.Enabled(r.Context(), level) {
			return
		}
		logger.LogAttrs(r.Context(), level, "request",
			slog.String("request_id", rid),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", rec.status),
			slog.Duration("duration", elapsed))
	})
}

// notFound answers requests no route matched with the site's own 404 page,
// or JSON under /api/ and /oauth2/, instead of net/http's plain text. The
// mux still answers everything else, its 405s included.
func notFound(page, json http.Handler, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nf := page
		if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/oauth2/") {
			nf = json
		}
		next.ServeHTTP(&notFoundWriter{ResponseWriter: w, r: r, page: nf}, r)
	})
}

// notFoundWriter replaces the mux's own 404 (a request that matched no
// pattern) with page; a handler's 404 passes through unchanged.
type notFoundWriter struct {
	http.ResponseWriter
	r        *http.Request
	page     http.Handler
	replaced bool
}

func (w *notFoundWriter) WriteHeader(code int) {
	if code == http.StatusNotFound && w.r.Pattern == "" && !w.replaced {
		w.replaced = true
		// http.Error set text/plain; the page sets its own type.
		w.ResponseWriter.Header().Del("Content-Type")
		w.page.ServeHTTP(w.ResponseWriter, w.r)
		return
	}
	if w.replaced {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *notFoundWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *notFoundWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
