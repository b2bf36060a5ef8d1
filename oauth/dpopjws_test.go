package oauth

import (
	"strings"
	"testing"

	"gatehouse/oauth/dpoptest"
)

// TestProofHeadersRemembersOnlySigned checks what the header cache keeps:
// a header once a proof with it verified, never one whose first proof had
// a bad signature, nor one longer than maxLen; and no more than max.
func TestProofHeadersRemembersOnlySigned(t *testing.T) {
	c := &headerCache{max: 3, maxLen: 2048}

	es := dpoptest.NewES256()
	good := es.Build(dpoptest.Proof{Method: "GET", URL: "https://as.example/x"})
	head, _, _ := strings.Cut(good, ".")
	forged := good[:strings.LastIndexByte(good, '.')+1] + strings.Repeat("A", 86)
	if _, _, err := c.parseProof(forged); err == nil {
		t.Fatal("a forged signature verified")
	}
	if c.get(head) != nil {
		t.Fatal("the header of a forged proof was remembered")
	}
	if _, _, err := c.parseProof(good); err != nil {
		t.Fatal(err)
	}
	if h := c.get(head); h == nil || h.jkt != es.Thumbprint() {
		t.Fatalf("after a good proof: %+v, want its header with thumbprint %s", h, es.Thumbprint())
	}

	c.maxLen = len(head) - 1
	other := dpoptest.NewES256()
	p := other.Build(dpoptest.Proof{Method: "GET", URL: "https://as.example/x"})
	if _, _, err := c.parseProof(p); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := strings.Cut(p, "."); c.get(h) != nil {
		t.Fatal("a header longer than maxLen was remembered")
	}

	c.maxLen = 2048
	for range 5 {
		k := dpoptest.NewES256()
		if _, _, err := c.parseProof(k.Build(dpoptest.Proof{Method: "GET", URL: "https://as.example/x"})); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.m); n != 3 {
		t.Fatalf("%d headers remembered, want the maximum, 3", n)
	}
}
