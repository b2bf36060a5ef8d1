package oauth

import (
	"context"
	"testing"
)

func TestBookChangesOnlyForTheTokensUser(t *testing.T) {
	n := int64(7)
	ctx := context.WithValue(context.Background(), principalKey{}, Principal{UserID: "alice", BookChanges: &n})
	if got, ok := BookChanges(ctx, "alice"); !ok || got != 7 {
		t.Errorf("BookChanges(alice) = %d, %v; want 7, true", got, ok)
	}
	if _, ok := BookChanges(ctx, "bob"); ok {
		t.Error("BookChanges(bob) answered with alice's count")
	}
	unread := context.WithValue(context.Background(), principalKey{}, Principal{UserID: "alice"})
	if _, ok := BookChanges(unread, "alice"); ok {
		t.Error("BookChanges answered though the token check read no count")
	}
	if _, ok := BookChanges(context.Background(), ""); ok {
		t.Error("BookChanges answered without a principal")
	}
}
