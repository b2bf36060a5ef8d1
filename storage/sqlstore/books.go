package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gatehouse/storage"
)

const bookColumns = `id, user_id, title, author, year, created_at, updated_at`

var (
	qCreateBook = newQuery(`INSERT INTO books (` + bookColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	qGetBook    = newQuery(`SELECT ` + bookColumns + ` FROM books WHERE user_id = ? AND id = ?`)
	// The owner is known, and not read back.
	qListBooks   = newQuery(`SELECT id, title, author, year, created_at, updated_at FROM books WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?`)
	qUpdateBook  = newQuery(`UPDATE books SET title = ?, author = ?, year = ?, updated_at = ? WHERE user_id = ? AND id = ?`)
	qDeleteBook  = newQuery(`DELETE FROM books WHERE user_id = ? AND id = ?`)
	qBookChanges = newQuery(`SELECT book_changes FROM users WHERE id = ?`)
)

func (s *Store) CreateBook(ctx context.Context, b storage.Book) error {
	_, err := s.exec(ctx, qCreateBook, b.ID, b.UserID, b.Title, b.Author, b.Year, s.time(b.CreatedAt), s.time(b.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create book: %w", s.d.translate(err))
	}
	return nil
}

// GetBook returns userID's book id; another user's book is
// storage.ErrNotFound.
func (s *Store) GetBook(ctx context.Context, userID, id string) (storage.Book, error) {
	b, err := scanBook(s.stmt(ctx, qGetBook).QueryRowContext(ctx, userID, id))
	if err != nil {
		return storage.Book{}, fmt.Errorf("get book %q: %w", id, s.d.translate(err))
	}
	return b, nil
}

// ListBooks returns up to limit of userID's books with an ID greater than
// afterID, in ID order, which is creation order. Pass the last ID of a page
// to get the next one, "" for the first. limit must be positive.
func (s *Store) ListBooks(ctx context.Context, userID, afterID string, limit int) ([]storage.Book, error) {
	if limit <= 0 {
		return nil, errors.New("list books: limit must be positive")
	}
	ctx = quickRead(ctx)
	rows, err := s.stmt(ctx, qListBooks).QueryContext(ctx, userID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list books: %w", err)
	}
	defer rows.Close()
	// One set of destinations for every row: Scan's reflection-free cases
	// only, and no fresh argument list per row.
	var b storage.Book
	var year sql.NullInt64
	dest := []any{&b.ID, &b.Title, &b.Author, &year, timeDest{&b.CreatedAt}, timeDest{&b.UpdatedAt}}
	bs := make([]storage.Book, 0, min(limit, maxListPrealloc))
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("list books: %w", err)
		}
		b.UserID, b.Year = userID, nil
		if year.Valid {
			y := int(year.Int64)
			b.Year = &y
		}
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list books: %w", err)
	}
	return bs, nil
}

// maxListPrealloc bounds the room ListBooks makes before it knows how
// many rows there are.
const maxListPrealloc = 128

// UpdateBook changes the title, author, year and updated_at of the book
// b.ID owned by b.UserID.
func (s *Store) UpdateBook(ctx context.Context, b storage.Book) error {
	if err := s.execOne(ctx, qUpdateBook, b.Title, b.Author, b.Year, s.time(b.UpdatedAt), b.UserID, b.ID); err != nil {
		return fmt.Errorf("update book %q: %w", b.ID, err)
	}
	return nil
}

func (s *Store) DeleteBook(ctx context.Context, userID, id string) error {
	if err := s.execOne(ctx, qDeleteBook, userID, id); err != nil {
		return fmt.Errorf("delete book %q: %w", id, err)
	}
	return nil
}

// BookChanges reads the count migration 0017's triggers keep.
func (s *Store) BookChanges(ctx context.Context, userID string) (int64, error) {
	ctx = quickRead(ctx)
	var n int64
	if err := s.stmt(ctx, qBookChanges).QueryRowContext(ctx, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("book changes of user %q: %w", userID, s.d.translate(err))
	}
	return n, nil
}

func scanBook(row scanner) (storage.Book, error) {
	var b storage.Book
	err := row.Scan(&b.ID, &b.UserID, &b.Title, &b.Author, &b.Year, timeDest{&b.CreatedAt}, timeDest{&b.UpdatedAt})
	return b, err
}
