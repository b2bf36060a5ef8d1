package oauth

import (
	"context"

	"github.com/ory/fosite"

	"gatehouse/storage"
)

// requestMemo carries through one token request what fosite makes the
// store read or encode twice: the refresh grant reads the presented
// token's row to check it and again to rotate it, and stores one request
// in both the access and the refresh row it issues. It belongs to a
// single request and is used by one goroutine at a time.
type requestMemo struct {
	refresh storage.Token // without Data; Signature "" when none was read

	// accessReq is the request the access row was stored with, and
	// accessData its encoding.
	accessReq  *fosite.Request
	accessData []byte
}

type memoKey struct{}

// withMemo gives a token request its memo.
func withMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, new(requestMemo))
}

// memoFrom is ctx's memo, or nil, whose methods remember nothing.
func memoFrom(ctx context.Context) *requestMemo {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	return m
}

// remember keeps t, a refresh token's row, for refreshRow.
func (m *requestMemo) remember(t storage.Token) {
	if m == nil {
		return
	}
	t.Data = nil
	m.refresh = t
}

// refreshRow is the row remember kept, when it is signature's.
func (m *requestMemo) refreshRow(signature string) (storage.Token, bool) {
	if m == nil || m.refresh.Signature == "" || m.refresh.Signature != signature {
		return storage.Token{}, false
	}
	return m.refresh, true
}

// marshal encodes req for a row of kind. A refresh row stored with the
// very request the access row of the same response was stored with gets
// the access row's bytes: fosite hands both the same request and changes
// nothing in between, so the encoding would come out the same.
func (m *requestMemo) marshal(kind storage.TokenKind, req fosite.Requester) ([]byte, error) {
	r, _ := req.(*fosite.Request)
	if m != nil && r != nil && kind == storage.KindRefresh && m.accessReq == r {
		return m.accessData, nil
	}
	data, err := marshalRequest(req)
	if err != nil {
		return nil, err
	}
	if m != nil && kind == storage.KindAccess {
		m.accessReq, m.accessData = r, data
	}
	return data, nil
}
