package oauth

import (
	"bytes"
	"context"
	"testing"

	"gatehouse/storage"
)

// TestMemoMarshalOnce: the refresh row stored with the access row's very
// request reuses its encoding; any other request is encoded afresh.
func TestMemoMarshalOnce(t *testing.T) {
	m := memoFrom(withMemo(context.Background()))
	req := benchRequest()
	access, err := m.marshal(storage.KindAccess, req)
	if err != nil {
		t.Fatal(err)
	}
	refresh, err := m.marshal(storage.KindRefresh, req)
	if err != nil {
		t.Fatal(err)
	}
	if &refresh[0] != &access[0] {
		t.Error("the refresh row's request was encoded again")
	}
	other := benchRequest()
	data, err := m.marshal(storage.KindRefresh, other)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := marshalRequest(other)
	if !bytes.Equal(data, want) {
		t.Errorf("another request got the access row's encoding: %s", data)
	}
}

// TestMemoRefreshRow: only the row of the presented signature is reused,
// and without its data.
func TestMemoRefreshRow(t *testing.T) {
	m := memoFrom(withMemo(context.Background()))
	if _, ok := m.refreshRow("a"); ok {
		t.Fatal("a row before any was read")
	}
	m.remember(storage.Token{Kind: storage.KindRefresh, Signature: "a", Subject: "alice", Data: []byte("{}")})
	if _, ok := m.refreshRow("b"); ok {
		t.Error("the row of another signature")
	}
	got, ok := m.refreshRow("a")
	if !ok || got.Subject != "alice" || got.Data != nil {
		t.Errorf("refreshRow(a) = %+v, %v", got, ok)
	}
	var none *requestMemo
	if _, ok := none.refreshRow("a"); ok {
		t.Error("a context without a memo remembered a row")
	}
}
