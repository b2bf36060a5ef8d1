// Package books serves the sample books API under /api/books: every end user
// keeps a private list of books. The package knows nothing of OAuth: the
// caller says which user a request acts for and supplies the middlewares
// that guard reads and writes.
package books
