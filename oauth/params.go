package oauth

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/ory/fosite"
)

// maxFormBytes caps OAuth form bodies; net/http would otherwise read up to
// 10 MB of form before fosite sees a byte.
const maxFormBytes = 64 << 10

// RFC 6749 §3.1 and §3.2: request parameters must not appear more than
// once. fosite reads them with Form.Get and keeps the first, so repeats
// are refused here.
var (
	authorizeParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state",
		"code_challenge", "code_challenge_method", "nonce", "prompt", "response_mode", "max_age",
		"request", "request_uri", "claims", "registration", "dpop_jkt", signedInAfter}
	tokenParams = []string{"grant_type", "code", "redirect_uri", "client_id", "client_secret",
		"code_verifier", "refresh_token", "scope", "device_code", "client_assertion", "client_assertion_type"}
	tokenManagementParams = []string{"token", "token_type_hint", "client_id", "client_secret",
		"client_assertion", "client_assertion_type"}
)

// readForm reads a form body of the token, revocation or introspection
// endpoint, capped, and refuses repeated names among params and anything
// that is not UTF-8. Only urlencoded bodies are read (RFC 6749 §3.2): fosite
// would parse a multipart body itself, past every check made here.
func readForm(w http.ResponseWriter, r *http.Request, params []string) error {
	if !isFormBody(r) {
		return fosite.ErrInvalidRequest.WithHint("The request body must be application/x-www-form-urlencoded.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return fosite.ErrInvalidRequest.WithHint("The request body could not be read as a form.")
	}
	if name := repeatedParam(r.PostForm, params); name != "" {
		return fosite.ErrInvalidRequest.WithHintf("The %q parameter must not be repeated.", name)
	}
	if name := invalidUTF8Param(r.PostForm); name != "" {
		return fosite.ErrInvalidRequest.WithHintf("The %q parameter is not valid UTF-8.", name)
	}
	return nil
}

// isFormBody reports whether r's body is declared
// application/x-www-form-urlencoded, the one body an OAuth endpoint reads.
func isFormBody(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// checkParams refuses, once the client and its redirect URI are known (so
// the answer goes back to the client), the authorization parameters that
// are repeated, not UTF-8, or not supported.
func checkParams(q url.Values) error {
	if name := repeatedParam(q, authorizeParams); name != "" {
		return fosite.ErrInvalidRequest.WithHintf("The %q parameter must not be repeated.", name)
	}
	if name := invalidUTF8Param(q); name != "" {
		return fosite.ErrInvalidRequest.WithHintf("The %q parameter is not valid UTF-8.", name)
	}
	switch m := q.Get("response_mode"); m {
	case "", string(fosite.ResponseModeQuery), string(fosite.ResponseModeFormPost):
	default:
		return fosite.ErrUnsupportedResponseMode.WithHintf("The response_mode %q is not supported; use query or form_post.", m)
	}
	return unsupportedRequestParam(q)
}

// unsupportedRequestParam is the one place that refuses authorization
// parameters Gatehouse does not implement, before fosite sees them: with
// a request_uri fosite would look for PAR storage and fail with a server
// error, or fetch the URI itself; only a request_uri of POST /oauth2/par
// passes (its request was already resolved by pushedQuery). A claims parameter is ignored, as
// OpenID Connect Core §5.5 allows and discovery's
// claims_parameter_supported=false says.
func unsupportedRequestParam(q url.Values) error {
	switch {
	case q.Has("request_uri") && !strings.HasPrefix(q.Get("request_uri"), parPrefix):
		return fosite.ErrRequestURINotSupported.WithHint("Request objects by reference (request_uri) are not supported.")
	case q.Has("request"):
		return fosite.ErrRequestNotSupported.WithHint("Request objects (request) are not supported.")
	case q.Has("registration"):
		return fosite.ErrRegistrationNotSupported.WithHint("The registration parameter is not supported; register the client first.")
	}
	return nil
}

// repeatedParam returns the first of names that appears more than once.
func repeatedParam(v url.Values, names []string) string {
	for _, n := range names {
		if len(v[n]) > 1 {
			return n
		}
	}
	return ""
}

// invalidUTF8Param returns the first parameter whose name or value is not
// UTF-8: it could only be a mistake or an attack, and a page or redirect
// that echoed it would carry it further.
func invalidUTF8Param(v url.Values) string {
	for k, vs := range v {
		if !utf8.ValidString(k) {
			return "(name)"
		}
		for _, s := range vs {
			if !utf8.ValidString(s) {
				return k
			}
		}
	}
	return ""
}

// logFailure logs a server-side failure behind an OAuth error answer, once,
// at the edge. A request whose client hung up is no failure of the server's
// and is logged at debug.
func (h *Handler) logFailure(ctx context.Context, msg string, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField < 500 {
		return
	}
	level := slog.LevelError
	if errors.Is(err, context.Canceled) {
		level = slog.LevelDebug
	}
	h.Logger.Log(ctx, level, msg, "err", err, "cause", rfc.Cause())
}
