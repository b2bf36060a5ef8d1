// Package accounts owns end users: registration, password hashing, sign-in
// throttling, the login, register and logout pages, and the session cookie
// that carries the signed-in user between the steps of an authorization.
// Other packages ask Sessions who is signed in.
package accounts
