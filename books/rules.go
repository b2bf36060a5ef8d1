package books

// The API's rules, for other front ends over the same Store (the MCP
// tools), so a book valid in one is valid in the other.

// Page sizes of a list.
const (
	DefaultLimit = defaultLimit
	MaxLimit     = maxLimit
)

// CheckBook applies the API's rules to a book's fields; the error names
// the field at fault.
func CheckBook(title, author string, year *int) error {
	in := bookInput{Title: title, Author: author, Year: year}
	return in.validate()
}

// ParseCursor returns the ID after which the page a cursor names starts,
// "" for the first page.
func ParseCursor(s string) (string, error) { return decodeCursor(s) }

// Cursor is the cursor of the page after the book lastID.
func Cursor(lastID string) string { return encodeCursor(lastID) }

// WellFormedID reports whether id has the shape of a book ID.
func WellFormedID(id string) bool { return wellFormedID(id) }
