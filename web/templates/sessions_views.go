package templates

import "time"

// SessionsSection is "Signed-in sessions" on /account/security.
type SessionsSection struct {
	// Sessions are newest first.
	Sessions []SessionEntry
	Notice   string
	Error    string
}

// SessionEntry is one signed-in browser.
type SessionEntry struct {
	// ID is what the sign-out form posts for this session.
	ID string
	// Device is the user agent in words, such as "Chrome on macOS".
	Device   string
	Address  string
	Created  time.Time
	LastSeen time.Time
	// Current marks the browser looking at the page.
	Current bool
}

// Others reports whether a session other than this browser's is signed in.
func (s SessionsSection) Others() bool {
	for _, e := range s.Sessions {
		if !e.Current {
			return true
		}
	}
	return false
}

// The password form's fields, as PasswordSection.Invalid names them.
const (
	FieldCurrentPassword = "current_password"
	FieldNewPassword     = "new_password"
)

// PasswordSection is the password change form on /account/security.
type PasswordSection struct {
	Notice string
	Error  string
	// Invalid is the field the error is about, FieldCurrentPassword or
	// FieldNewPassword; "" for neither.
	Invalid string
}
