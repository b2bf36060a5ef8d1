// Package mcp serves the books as Model Context Protocol tools over the
// Streamable HTTP transport. It knows nothing of OAuth: the server puts
// its bearer-token check in front and tells this package, per request, who
// the caller is, which scopes the token holds, and how to refuse one that
// lacks a tool's scope.
package mcp
