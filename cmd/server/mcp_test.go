package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// mcpClient is the official Go SDK's client, given nothing but the
// endpoint's URL: it learns everything else from the 401, registers
// dynamically, and has b sign in and allow.
func mcpClient(t *testing.T, srv *testServer, b *browser, user, password string) (*sdk.ClientSession, *auth.AuthorizationCodeHandler) {
	t.Helper()
	// A loopback redirect URI whose port nothing listens on: the browser
	// stops at the redirect and hands the code over, as a native app's
	// callback listener would.
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName:              "Go SDK test client",
			RedirectURIs:            []string{redirect},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
		}},
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			u, err := url.Parse(args.URL)
			if err != nil {
				return nil, err
			}
			q := u.Query()
			if q.Get("resource") != srv.URL+"/mcp" || q.Get("code_challenge_method") != "S256" {
				return nil, fmt.Errorf("authorization URL lacks resource or PKCE: %s", args.URL)
			}
			back := b.signInAndAuthorize(args.URL, user, password, "allow")
			if !strings.HasPrefix(back.String(), redirect+"?") {
				return nil, fmt.Errorf("redirected to %s, want %s", back, redirect)
			}
			return &auth.AuthorizationResult{Code: back.Query().Get("code"), State: back.Query().Get("state"), Iss: back.Query().Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "gatehouse-test", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	session, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: srv.URL + "/mcp", OAuthHandler: handler}, nil)
	if err != nil {
		t.Fatalf("connect: %v\nserver log: %s", err, srv.logs)
	}
	t.Cleanup(func() { session.Close() })
	return session, handler
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// callTool calls a tool and decodes its structured result into out,
// returning the result for its IsError flag.
func callTool(t *testing.T, s *sdk.ClientSession, name string, args map[string]any, out any) *sdk.CallToolResult {
	t.Helper()
	res, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	if out != nil && !res.IsError {
		raw, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s result %s: %v", name, raw, err)
		}
	}
	return res
}

func toolText(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, " ")
}

type mcpBook struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Author string `json:"author"`
	Year   *int   `json:"year"`
}

func TestMCPGoSDKClient(t *testing.T) {
	srv := newTestServer(t, "--dynamic-registration")
	srv.mustCreateUser(t, "alice", "alice-password")
	session, handler := mcpClient(t, srv, newBrowser(t, srv.URL), "alice", "alice-password")

	tools, err := session.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
		if tool.InputSchema == nil {
			t.Errorf("tool %s has no input schema", tool.Name)
		}
	}
	slices.Sort(names)
	if want := []string{"add_book", "delete_book", "get_book", "list_books", "update_book"}; !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}

	var added mcpBook
	if res := callTool(t, session, "add_book", map[string]any{"title": "Dune", "author": "Frank Herbert", "year": 1965}, &added); res.IsError {
		t.Fatalf("add_book: %s", toolText(res))
	}
	var got mcpBook
	callTool(t, session, "get_book", map[string]any{"id": added.ID}, &got)
	if got.Title != "Dune" || got.Year == nil || *got.Year != 1965 {
		t.Errorf("get_book = %+v", got)
	}
	var updated mcpBook
	callTool(t, session, "update_book", map[string]any{"id": added.ID, "title": "Dune Messiah"}, &updated)
	if updated.Title != "Dune Messiah" || updated.Author != "Frank Herbert" {
		t.Errorf("update_book kept the wrong fields: %+v", updated)
	}
	var page struct {
		Books      []mcpBook `json:"books"`
		NextCursor string    `json:"next_cursor"`
	}
	callTool(t, session, "list_books", map[string]any{"limit": 10}, &page)
	if len(page.Books) != 1 || page.Books[0].ID != added.ID || page.NextCursor != "" {
		t.Errorf("list_books = %+v", page)
	}

	// Bad input is a tool error the model can read, never a protocol
	// failure or a 500.
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"add_book", map[string]any{"title": ""}, "title"},
		{"add_book", map[string]any{"title": strings.Repeat("x", 301)}, "title"},
		{"add_book", map[string]any{"title": "t", "year": "nineteen"}, "year"},
		{"add_book", map[string]any{"title": "t", "year": 12345}, "year"},
		{"get_book", map[string]any{"id": "nope"}, "no book"},
		{"get_book", map[string]any{}, "id"},
		{"list_books", map[string]any{"limit": 500}, "limit"},
		{"list_books", map[string]any{"cursor": "bogus"}, "cursor"},
		{"update_book", map[string]any{"id": added.ID, "title": "  "}, "title"},
		{"delete_book", map[string]any{"id": "01hzzzzzzzzzzzzzzzzzzzzzzz"}, "no book"},
	} {
		res := callTool(t, session, tc.name, tc.args, nil)
		if !res.IsError || !strings.Contains(toolText(res), tc.want) {
			t.Errorf("%s %v: IsError=%v %q, want a tool error naming %q", tc.name, tc.args, res.IsError, toolText(res), tc.want)
		}
	}

	var deleted struct{ Deleted string }
	callTool(t, session, "delete_book", map[string]any{"id": added.ID}, &deleted)
	if deleted.Deleted != added.ID {
		t.Errorf("delete_book = %+v", deleted)
	}

	// The token the SDK got is for /mcp only: the books API refuses it.
	ts, _ := handler.TokenSource(context.Background())
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	resp, body := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil)
	if resp.StatusCode != http.StatusUnauthorized || errorCode(body) != "invalid_token" ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/api/books"`) {
		t.Errorf("books API with an MCP token: %d %v %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
}
