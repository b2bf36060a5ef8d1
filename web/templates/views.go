// Package templates holds every HTML page of Gatehouse as templ components.
// Components take the view structs below, never requests, storage records
// or OAuth library types, so handlers decide what a page may show.
package templates

import "time"

// Page is what every page's shell needs.
type Page struct {
	Title string
	// User is the signed-in username, "" when signed out.
	User string
	// CSS and JS are the content-hashed URLs of the stylesheet and script.
	CSS string
	JS  string
	// Flash is a one-line notice shown at the top (for example "App deleted").
	Flash string
	// Icon is the content-hashed URL of the favicon; "" leaves it out.
	Icon string
}

// Scope is one permission in plain words.
type Scope struct {
	Name        string // "books:read"
	Description string // "Read your books"
}

type HomeView struct {
	Page
	RegistrationOpen bool
}

type LoginView struct {
	Page
	Username string // echoed back after a failed attempt
	ReturnTo string
	// Fresh asks for a sign-in even though someone is signed in (prompt=login,
	// max_age); the form carries it on as fresh=1.
	Fresh            bool
	Error            string
	RegistrationOpen bool
	// PasskeyScript is the URL of the passkey script, "" when the server
	// offers no passkeys (its issuer is an IP address).
	PasskeyScript string
}

type RegisterView struct {
	Page
	Username string
	Email    string
	ReturnTo string
	Error    string
}

// ConsentView is the page where a user allows or denies an app.
type ConsentView struct {
	Page
	ClientName  string
	ClientOwner string // who registered the app; "" when no user did
	// ClientOrigin is how an app without ClientOwner was registered:
	// "cli", "dynamic", "metadata" or "unknown" (storage.ClientOrigin).
	ClientOrigin string
	RedirectHost string // the exact host the user will be sent back to
	Scopes       []Scope
	// Action is the form's action: /oauth2/authorize?<the original query>.
	Action string
	// SwitchReturnTo is where "not you?" signs out and comes back to.
	SwitchReturnTo string
	// DocumentHost is set for an app that describes itself with a client
	// metadata document: the host publishing it, the app's only identity,
	// which no one at this server has checked.
	DocumentHost string
}

// ErrorView explains a problem without redirecting anywhere.
type ErrorView struct {
	Page
	Heading string
	Message string
	// Detail is for the app's developer (for example which parameter was wrong).
	Detail string
}

type AppsView struct {
	Page
	Apps []AppSummary
}

type AppSummary struct {
	ClientID string
	Name     string
	Public   bool
	// UsesKeys: the app authenticates with private_key_jwt, not a secret.
	UsesKeys     bool
	RedirectURIs []string
	CreatedAt    time.Time
}

// AppFormView is the form to register an app, or to edit one when ClientID
// is set.
type AppFormView struct {
	Page
	ClientID     string
	Name         string
	RedirectURIs string // one per line
	Public       bool
	Scope        string // space-separated
	JWKS         string // a private_key_jwt app's public keys
	Error        string
	// PostLogoutRedirectURIs, one per line, are where sign-out may return.
	PostLogoutRedirectURIs string
	// IDTokenAlg is the chosen id_token_signed_response_alg.
	IDTokenAlg string
}

// AppView shows one app; Secret is non-empty only right after creation or
// rotation, the one time it is shown.
type AppView struct {
	Page
	App          AppSummary
	Scopes       []Scope
	GrantTypes   []string
	Secret       string
	RedirectURIs string // for the edit form, one per line
	Error        string
	// PostLogoutRedirectURIs, one per line, for the edit form.
	PostLogoutRedirectURIs string
	// IDTokenAlg is the app's id_token_signed_response_alg, for the edit
	// form.
	IDTokenAlg string
}

type ConnectionsView struct {
	Page
	Connections []Connection
}

type Connection struct {
	ClientID   string
	ClientName string
	Scopes     []Scope
	GrantedAt  time.Time
}

// FormPostView is an authorization response delivered by POST to the app.
type FormPostView struct {
	Page
	ClientName string
	// Action is the app's registered redirect URI, already checked.
	Action string
	Fields []FormField
}

// FormField is one hidden field of a form.
type FormField struct {
	Name  string
	Value string
}

// SecurityView is /account/security; each field is one section.
type SecurityView struct {
	Page
	// Email is nil when the server has no address pages.
	Email *EmailSection
	// TOTP is nil when the server has no second step.
	TOTP     *TOTPSection
	Password PasswordSection
	Sessions SessionsSection
	Activity []ActivityEntry
	// Passkeys is nil when the server has no passkey pages.
	Passkeys *PasskeysSection
}

// PasskeysSection lists the user's passkeys on the security page.
type PasskeysSection struct {
	// Available is false when the issuer is an IP address, where browsers
	// refuse passkeys.
	Available bool
	ScriptURL string
	Keys      []PasskeyEntry
}

// PasskeyEntry is one passkey of the list.
type PasskeyEntry struct {
	ID       string
	Name     string
	Created  time.Time
	LastUsed *time.Time // nil until first used
	// Synced: the passkey may be copied to the user's other devices.
	Synced bool
}

// ActivityEntry is one line of "Recent activity", already in words.
type ActivityEntry struct {
	Time    time.Time
	What    string
	App     string // the app's name, or "" when none is concerned
	Address string
}

// LoginCodeView is the second step of signing in: a code from the
// authenticator app, or a recovery code.
type LoginCodeView struct {
	Page
	// Recovery asks for a recovery code rather than the app's code; the
	// form takes either.
	Recovery bool
	// StepUp: the user is signed in and an app asked for a second factor.
	StepUp bool
	Error  string
}

// TOTPSection is the authenticator app part of /account/security.
type TOTPSection struct {
	Enabled           bool
	RecoveryCodesLeft int
	Error             string
	Notice            string
}

// TOTPSetupView shows a new authenticator key to scan or type, and the
// form that confirms it with a code.
type TOTPSetupView struct {
	Page
	// QR is a data: URI of a PNG.
	QR string
	// Secret is the key in groups of four for reading.
	Secret string
	// Token carries the key, sealed, back with the code.
	Token string
	Error string
}

// RecoveryCodesView shows recovery codes, the one time they are shown.
type RecoveryCodesView struct {
	Page
	Heading string
	Codes   []string
}
