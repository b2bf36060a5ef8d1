package books

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"gatehouse/storage"
)

// fakeStore keeps books in a map. When fail is set every method returns it,
// which is how tests reach the server_error path.
type fakeStore struct {
	mu    sync.Mutex
	books map[string]storage.Book
	fail  error
	// changes counts every write, to any user's books: coarser than
	// storage.BookChanges, which is enough for a cache to be correct.
	changes int64
	// gone holds the users deleted since the store was made.
	gone map[string]bool
	// changesReads counts the calls of BookChanges.
	changesReads int
}

var _ Store = (*fakeStore)(nil)

func newFakeStore(books ...storage.Book) *fakeStore {
	s := &fakeStore{books: make(map[string]storage.Book)}
	for _, b := range books {
		s.books[b.ID] = b
	}
	return s
}

func (s *fakeStore) CreateBook(_ context.Context, b storage.Book) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if _, ok := s.books[b.ID]; ok {
		return storage.ErrConflict
	}
	s.books[b.ID] = b
	s.changes++
	return nil
}

func (s *fakeStore) GetBook(_ context.Context, userID, id string) (storage.Book, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return storage.Book{}, s.fail
	}
	b, ok := s.books[id]
	if !ok || b.UserID != userID {
		return storage.Book{}, storage.ErrNotFound
	}
	return b, nil
}

func (s *fakeStore) ListBooks(_ context.Context, userID, afterID string, limit int) ([]storage.Book, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	var out []storage.Book
	for _, b := range s.books {
		if b.UserID == userID && b.ID > afterID {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b storage.Book) int { return cmp.Compare(a.ID, b.ID) })
	return out[:min(limit, len(out))], nil
}

func (s *fakeStore) UpdateBook(_ context.Context, b storage.Book) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	old, ok := s.books[b.ID]
	if !ok || old.UserID != b.UserID {
		return storage.ErrNotFound
	}
	old.Title, old.Author, old.Year, old.UpdatedAt = b.Title, b.Author, b.Year, b.UpdatedAt
	s.books[b.ID] = old
	s.changes++
	return nil
}

func (s *fakeStore) DeleteBook(_ context.Context, userID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	b, ok := s.books[id]
	if !ok || b.UserID != userID {
		return storage.ErrNotFound
	}
	delete(s.books, id)
	s.changes++
	return nil
}

func (s *fakeStore) BookChanges(_ context.Context, userID string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changesReads++
	switch {
	case s.fail != nil:
		return 0, s.fail
	case s.gone[userID]:
		return 0, storage.ErrNotFound
	}
	return s.changes, nil
}

// deleteUser removes userID and their books as the database's cascade
// does: with them goes their count, which no other count replaces.
func (s *fakeStore) deleteUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, b := range s.books {
		if b.UserID == userID {
			delete(s.books, id)
		}
	}
	if s.gone == nil {
		s.gone = make(map[string]bool)
	}
	s.gone[userID] = true
}

func (s *fakeStore) book(id string) (storage.Book, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.books[id]
	return b, ok
}
