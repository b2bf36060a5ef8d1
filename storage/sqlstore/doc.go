// Package sqlstore is the storage.Store of Gatehouse on SQLite or
// PostgreSQL: one implementation whose queries are written once, in portable
// SQL with ? placeholders, and a dialect (dialect.go) that holds everything
// the two engines do differently.
//
// Both engines go through database/sql: SQLite with the pure-Go
// modernc.org/sqlite driver, PostgreSQL with pgx's database/sql adapter
// (github.com/jackc/pgx/v5/stdlib). pgx's native interface skips a layer, but
// it has its own types for rows, transactions and pools, so every method
// would be written twice. Through database/sql one code path serves both
// engines: the same prepared statements, the same transaction carried in the
// context, the same scanning. pgx still does the PostgreSQL work underneath,
// and its errors stay reachable with errors.As.
//
// Every statement is prepared when the store opens and reused on each
// connection, which halves the cost of a small query on SQLite.
//
// # Concurrency
//
// SQLite runs on two pools: a single writer connection whose transactions
// begin IMMEDIATE, so a transaction never fails halfway for want of the
// write lock, and several read-only connections that serve reads made
// outside a transaction beside the writer, as WAL mode allows. PostgreSQL
// runs on one pool at the default READ COMMITTED isolation. On both, the
// read-modify-writes of OAuth (redeeming a code, rotating a refresh token)
// rest on conditional updates: DeactivateToken changes a row only while it
// is active, so of racing callers exactly one succeeds.
//
// A method runs in the transaction carried by its context when there is
// one. Callers holding a transaction must pass its context to every call
// they make meanwhile: on SQLite, a write outside it waits for the writer
// that the transaction holds.
//
// # Time
//
// Timestamps are stored in UTC with microsecond precision; finer parts are
// truncated. PostgreSQL columns are TIMESTAMPTZ; SQLite columns are integers
// of microseconds since the Unix epoch, which compare in time order in SQL
// and need no parsing (see dialect.go). Times read back are in UTC.
package sqlstore
