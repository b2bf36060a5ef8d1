// Package web embeds the stylesheet, script and icon of the HTML pages and
// serves them under content-hashed URLs, so browsers may cache them forever
// and still fetch a new version the moment a file changes.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

type asset struct {
	body        []byte
	contentType string
	etag        string
}

var (
	// urls maps a file name under static/ to its hashed URL.
	urls = map[string]string{}
	// assets maps a hashed URL back to the file.
	assets = map[string]asset{}
)

func init() {
	err := fs.WalkDir(staticFS, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:4])
		rel := strings.TrimPrefix(name, "static/")
		url := "/static/" + hashedName(rel, hash)
		urls[rel] = url
		assets[url] = asset{body: body, contentType: contentType(name, body), etag: `"` + hash + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled into the binary, so this cannot fail at run
		// time unless the embed itself is broken.
		panic("web: read embedded static files: " + err.Error())
	}
}

// hashedName puts the hash before the extension ("app.css" becomes
// "app.3f9a1c2b.css") so the URL keeps the extension tools look for.
func hashedName(rel, hash string) string {
	ext := path.Ext(rel)
	return strings.TrimSuffix(rel, ext) + "." + hash + ext
}

// contentTypes pins the types of the files Gatehouse ships, because
// mime.TypeByExtension reads the host's mime.types, which differ between
// systems (some still say application/javascript).
var contentTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
}

func contentType(name string, body []byte) string {
	if t, ok := contentTypes[path.Ext(name)]; ok {
		return t
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return http.DetectContentType(body)
}

// AssetURL returns the content-hashed URL of a file in static/, for example
// AssetURL("app.css") is "/static/app.3f9a1c2b.css". An unknown name yields
// its unhashed path, which StaticHandler answers with 404, so a misspelt
// name shows up as a missing file instead of failing the request.
func AssetURL(name string) string {
	if url, ok := urls[name]; ok {
		return url
	}
	return "/static/" + name
}

// StaticHandler serves the files of static/ at the URLs AssetURL returns,
// with a year-long immutable Cache-Control. Unknown paths, including an
// older hash of an existing file, get 404. It expects the full request path,
// as when mounted at "GET /static/".
func StaticHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
