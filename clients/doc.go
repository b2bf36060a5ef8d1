// Package clients decides what a valid OAuth client ("app") is and how one
// is registered: by its owner on the /apps pages, by an operator from the
// command line, or by the client itself through RFC 7591 dynamic
// registration. It owns the scope catalogue, the redirect URI rules and the
// client secret format and hash; the oauth package checks secrets with
// SecretHasher.
package clients
