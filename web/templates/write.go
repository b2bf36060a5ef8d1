package templates

import (
	"context"
	"net/http"

	"github.com/a-h/templ"
)

// Write sends c as a whole HTML page with status. The status goes out
// before the body, so a rendering error can only be logged, which the
// caller does with its own logger.
func Write(ctx context.Context, w http.ResponseWriter, status int, c templ.Component) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	return c.Render(ctx, w)
}
