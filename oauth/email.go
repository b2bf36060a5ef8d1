package oauth

import (
	"context"
	"fmt"
)

// addEmailClaims sets the OpenID Connect email and email_verified claims
// from the user's current address; a user without one gets neither.
func (h *Handler) addEmailClaims(ctx context.Context, claims map[string]any, userID string) error {
	u, err := h.Store.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("email claims: %w", err)
	}
	if u.Email != "" {
		claims["email"] = u.Email
		claims["email_verified"] = u.EmailVerified
	}
	return nil
}
