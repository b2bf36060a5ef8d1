package accounts

import "net/http"

// ClientAddress is the address the per-address limits count, for other
// pages that throttle guesses the same way sign-in does.
func (h *Handler) ClientAddress(r *http.Request) string { return h.clientAddress(r) }
