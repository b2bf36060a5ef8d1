package books

import "sync"

// pageCache holds encoded pages of books, each tagged with the owner's
// storage.BookChanges count it was read at. A page is served again only
// while the count read for the request is the same, so a write on any
// instance shows at the next request.
type pageCache struct {
	mu    sync.RWMutex
	users map[string]userPages
	bytes int // the pages' size with overhead, which maxCachedBytes bounds
}

// userPages are one user's pages, all read at count n or later.
type userPages struct {
	n     int64
	pages map[pageKey][]byte
}

// pageKey is what a page depends on besides the user and the count.
type pageKey struct {
	after string
	limit int
}

// maxCachedBytes bounds the cache's memory: past it the cache starts over,
// which costs only reads. 4 MiB holds a thousand or more pages of 20 books
// and stays well inside the server's default Go memory limit. entryOverhead
// is what a page costs besides its bytes (map entries, keys), so that many
// small pages count too.
const (
	maxCachedBytes = 4 << 20
	entryOverhead  = 128
)

func newPageCache() *pageCache {
	return &pageCache{users: make(map[string]userPages)}
}

// get returns the page user's count n was cached with. The bytes are
// shared: callers write them and nothing else.
func (c *pageCache) get(user string, n int64, k pageKey) ([]byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.users[user]
	if !ok || u.n != n {
		return nil, false
	}
	page, ok := u.pages[k]
	return page, ok
}

// put caches page, read after count n was. A higher count than the user's
// entry replaces it; a lower one, from a request that raced a write, is
// not kept.
func (c *pageCache) put(user string, n int64, k pageKey, page []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.users[user]
	switch {
	case ok && n < u.n:
		return
	case !ok || n > u.n:
		for _, p := range u.pages {
			c.bytes -= entryOverhead + len(p)
		}
		u = userPages{n: n, pages: make(map[pageKey][]byte)}
	}
	if old, ok := u.pages[k]; ok {
		c.bytes -= entryOverhead + len(old)
	}
	if c.bytes+entryOverhead+len(page) > maxCachedBytes {
		clear(c.users)
		c.bytes = 0
		u = userPages{n: n, pages: make(map[pageKey][]byte)}
	}
	u.pages[k] = page
	c.bytes += entryOverhead + len(page)
	c.users[user] = u
}
