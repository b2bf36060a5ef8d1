package oauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Principal is who a verified access token acts for.
type Principal struct {
	UserID   string // "" for a client acting for itself
	Username string
	ClientID string
	Scopes   []string
	Audience []string // the resources the token is for; none for a first-wave token
	// BookChanges is the user's storage.BookChanges, read in the token's
	// statement for the books API's page cache; nil when it was not.
	BookChanges *int64
}

type principalKey struct{}

// PrincipalFrom returns the principal RequireScope verified.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// UserID is the end user behind the request's access token, "" if none.
func UserID(ctx context.Context) string {
	p, _ := PrincipalFrom(ctx)
	return p.UserID
}

// BookChanges is userID's storage.BookChanges as the request's token check
// read it, if it did and the token acts for userID.
func BookChanges(ctx context.Context, userID string) (int64, bool) {
	p, _ := PrincipalFrom(ctx)
	if p.BookChanges == nil || p.UserID != userID || userID == "" {
		return 0, false
	}
	return *p.BookChanges, true
}

// RequireScope guards a books API route: the request must carry a live
// access token for the books API that acts for an end user and was granted
// scope. Failures answer per RFC 6750 §3 with a JSON body.
func (h *Handler) RequireScope(scope string) func(http.Handler) http.Handler {
	return h.Require(BooksAPI, scope)
}

// Require guards a route of res as RequireScope does the books API; with
// scope "" any scope will do, and the handler checks with HasScope.
func (h *Handler) Require(res Resource, scope string) func(http.Handler) http.Handler {
	metadata := h.MetadataURL(res)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := h.verifyBearer(w, r, metadata, res.QueryToken)
			if !ok {
				return
			}
			if !h.audienceAllows(res, p.Audience) {
				h.tokenRefused(w, r, "This access token was issued for another resource; request one with resource="+h.uri(res)+".", metadata)
				return
			}
			if p.UserID == "" {
				// Any of the resource's scopes would do, once granted by a person.
				insufficientScope(w, r, cmp.Or(scope, strings.Join(res.Scopes, " ")), "This token acts for no end user; this resource needs one.", metadata)
				return
			}
			if scope != "" && !slices.Contains(p.Scopes, scope) {
				insufficientScope(w, r, scope, fmt.Sprintf("This token was not granted the %q scope.", scope), metadata)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}

// audienceAllows reports whether a token for aud may be used at res.
func (h *Handler) audienceAllows(res Resource, aud []string) bool {
	if len(aud) == 0 {
		return res.AcceptNoAudience
	}
	return slices.Contains(aud, h.uri(res))
}

// HasScope reports whether the request's verified token was granted scope.
func HasScope(ctx context.Context, scope string) bool {
	p, _ := PrincipalFrom(ctx)
	return slices.Contains(p.Scopes, scope)
}

// InsufficientScope answers 403 insufficient_scope for a route of res
// whose handler found scope missing.
func (h *Handler) InsufficientScope(res Resource) func(w http.ResponseWriter, r *http.Request, scope string) {
	metadata := h.MetadataURL(res)
	return func(w http.ResponseWriter, r *http.Request, scope string) {
		insufficientScope(w, r, scope, fmt.Sprintf("This token was not granted the %q scope.", scope), metadata)
	}
}

// verifyBearer extracts and checks the access token, writing the 400/401
// itself when it fails. A token comes as Bearer, or as DPoP with a proof
// of its key (RFC 9449 §7); a DPoP-bound token sent as Bearer is refused.
// metadata, when set, is the resource's RFC 9728 document, named in every
// challenge (§5.1); query says whether the resource takes ?access_token=
// when the operator allows it.
func (h *Handler) verifyBearer(w http.ResponseWriter, r *http.Request, metadata string, query bool) (Principal, bool) {
	token, dpop, problem := h.bearerToken(r, query)
	switch {
	case problem != "":
		bearerError(w, http.StatusBadRequest, "invalid_request", problem, metadata)
		return Principal{}, false
	case token == "":
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`+metadataParam(metadata))
		w.Header().Add("WWW-Authenticate", dpopChallenge("", "", metadata))
		writeJSON(w, http.StatusUnauthorized, errorBody{"invalid_token", "This endpoint needs an access token: send Authorization: Bearer <token>."})
		return Principal{}, false
	}
	var jkt string
	if dpop {
		var err error
		jkt, err = VerifyDPoP(r.Context(), r.Header.Values("DPoP"), h.dpopCheck(r, token), h.Store)
		var de *DPoPError
		switch {
		case errors.As(err, &de):
			h.dpopResourceError(w, de.Code, de.Description, metadata)
			return Principal{}, false
		case err != nil:
			h.Logger.ErrorContext(r.Context(), "verify DPoP proof", "err", err)
			writeJSON(w, http.StatusInternalServerError, errorBody{"server_error", "The proof could not be checked."})
			return Principal{}, false
		}
	}
	at, err := h.checkAccessToken(r.Context(), token)
	if err != nil {
		h.logFailure(r.Context(), "verify access token", err)
		if dpop {
			h.dpopResourceError(w, "invalid_token", "The access token is invalid, expired or revoked.", metadata)
		} else {
			bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.", metadata)
		}
		return Principal{}, false
	}
	switch {
	case dpop && at.JKT != jkt:
		h.dpopResourceError(w, "invalid_token", "The access token is not bound to the key of this DPoP proof.", metadata)
		return Principal{}, false
	case !dpop && at.JKT != "":
		h.dpopResourceError(w, "invalid_token", "The access token is bound to a DPoP key: send it as Authorization: DPoP with a proof.", metadata)
		return Principal{}, false
	}
	return at.Principal, true
}

// bearerToken finds the access token and whether it came with the DPoP
// scheme. fosite's own extractor always accepts ?access_token=, which
// leaks tokens into logs and Referer headers; here the query is read only
// when the operator allowed it, and a request using two methods at once
// is refused (RFC 6750 §2).
func (h *Handler) bearerToken(r *http.Request, query bool) (token string, dpop bool, problem string) {
	header := r.Header.Get("Authorization")
	var fromQuery []string
	if h.cfg.AllowQueryToken && query {
		fromQuery = r.URL.Query()["access_token"]
	}
	if header != "" {
		scheme, value, _ := strings.Cut(header, " ")
		dpop = strings.EqualFold(scheme, "DPoP")
		if !dpop && !strings.EqualFold(scheme, "Bearer") {
			return "", false, ""
		}
		if len(fromQuery) > 0 {
			return "", false, "Send the access token in one place only."
		}
		return strings.TrimSpace(value), dpop, ""
	}
	switch len(fromQuery) {
	case 0:
		return "", false, ""
	case 1:
		return fromQuery[0], false, ""
	}
	return "", false, "Send the access token in one place only."
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func bearerError(w http.ResponseWriter, status int, code, description, metadata string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="gatehouse", error=%q, error_description=%q`, code, description)+metadataParam(metadata))
	writeJSON(w, status, errorBody{code, description})
}

// insufficientScope answers 403 with the challenge of the scheme the
// token came in: a DPoP client told to get a new Bearer token would be
// told wrong (RFC 9449 §7.1 carries RFC 6750's error and scope).
func insufficientScope(w http.ResponseWriter, r *http.Request, scope, description, metadata string) {
	if sentDPoP(r) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP algs=%q, error="insufficient_scope", scope=%q, error_description=%q`, algNames(DPoPAlgs), scope, description)+metadataParam(metadata))
	} else {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="gatehouse", error="insufficient_scope", scope=%q, error_description=%q`, scope, description)+metadataParam(metadata))
	}
	writeJSON(w, http.StatusForbidden, errorBody{"insufficient_scope", description})
}

// tokenRefused answers 401 invalid_token for a live token this resource
// does not take, in the scheme the token came in.
func (h *Handler) tokenRefused(w http.ResponseWriter, r *http.Request, description, metadata string) {
	if sentDPoP(r) {
		h.dpopResourceError(w, "invalid_token", description, metadata)
		return
	}
	bearerError(w, http.StatusUnauthorized, "invalid_token", description, metadata)
}

// sentDPoP reports whether the request's token came as Authorization: DPoP.
func sentDPoP(r *http.Request) bool {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "DPoP")
}

func metadataParam(metadata string) string {
	if metadata == "" {
		return ""
	}
	return fmt.Sprintf(`, resource_metadata=%q`, metadata)
}
