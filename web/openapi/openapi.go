// Package openapi serves the OpenAPI 3.1 description of Gatehouse's HTTP
// surface, kept in openapi.json next to this file so that generators and
// reviewers read the same document the server serves.
package openapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

//go:embed openapi.json
var document []byte

// Handler serves the document. It changes only with a new release, so a
// short public cache spares clients refetching it without leaving a stale
// copy around for long after an upgrade.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Content-Length", strconv.Itoa(len(document)))
		if r.Method != http.MethodHead {
			w.Write(document)
		}
	})
}
