package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAllowed(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true, "93.184.216.34": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false,
		"192.168.1.1": false, "169.254.169.254": false, "100.64.0.1": false,
		"0.0.0.0": false, "::": false, "fe80::1": false, "fc00::1": false,
		"224.0.0.1": false, "ff02::1": false, "::ffff:10.0.0.1": false,
		"64:ff9b::a00:1": false, "2002:a00:1::": false, "192.0.2.1": false,
		"255.255.255.255": false,
	} {
		if got := allowed(netip.MustParseAddr(addr), false); got != want {
			t.Errorf("allowed(%s) = %v, want %v", addr, got, want)
		}
	}
	if !allowed(netip.MustParseAddr("127.0.0.1"), true) {
		t.Error("loopback refused with AllowLoopback")
	}
	if allowed(netip.MustParseAddr("10.0.0.1"), true) {
		t.Error("a private address passes with AllowLoopback")
	}
}

func TestCheckURL(t *testing.T) {
	strict := New(Config{})
	dev := New(Config{AllowLoopback: true})
	for _, tc := range []struct {
		url       string
		f         *Fetcher
		wantError string
	}{
		{"https://app.example/client.json", strict, ""},
		{"http://app.example/client.json", strict, "https"},
		{"http://127.0.0.1:8000/c", strict, "https"},
		{"http://127.0.0.1:8000/c", dev, ""},
		{"http://localhost:8000/c", dev, ""},
		{"http://app.example/c", dev, "https"},
		{"https://app.example/c#frag", strict, "fragment"},
		{"https://app.example/c#", strict, "fragment"},
		{"https://user@app.example/c", strict, "user information"},
		{"https:///c", strict, "no host"},
	} {
		_, err := tc.f.CheckURL(tc.url)
		if tc.wantError == "" && err != nil || tc.wantError != "" && (err == nil || !strings.Contains(err.Error(), tc.wantError)) {
			t.Errorf("CheckURL(%q) = %v, want error containing %q", tc.url, err, tc.wantError)
		}
	}
}

// TestDialledAddressIsChecked: a host name that resolves to loopback is
// refused when it is dialled, not only when the URL names an IP.
func TestDialledAddressIsChecked(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the server was reached")
	}))
	defer srv.Close()
	f := New(Config{TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	_, err := f.JSON(context.Background(), "https://localhost"+port+"/doc")
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
}

func TestJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/json" {
			t.Errorf("Accept = %q", r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write([]byte(`{"a":1}`))
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`{}`))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.(http.Flusher).Flush() // no Content-Length: the cap must hold while reading
		w.Write([]byte(`"` + strings.Repeat("x", 2000) + `"`))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/missing", http.NotFound)
	block := make(chan struct{})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(block)
	f := New(Config{AllowLoopback: true, MaxBytes: 1024, Timeout: 300 * time.Millisecond})
	for path, want := range map[string]string{
		"/ok":       "",
		"/html":     "content type",
		"/big":      "larger than 1 KiB",
		"/redirect": "redirect (302)",
		"/missing":  "answered 404",
		"/slow":     "did not answer within",
	} {
		doc, err := f.JSON(context.Background(), srv.URL+path)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", path, err)
		case want == "" && string(doc.Body) != `{"a":1}`:
			t.Errorf("%s: body %q", path, doc.Body)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: err = %v, want %q", path, err, want)
		}
	}
}
