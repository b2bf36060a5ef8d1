// Package accounts owns end users: registration, password hashing, sign-in
// throttling, the login, register and logout pages, and sessions: a
// server-side record per signed-in browser, named by the id its cookie
// carries between the steps of an authorization. Other packages ask
// Sessions who is signed in.
package accounts
