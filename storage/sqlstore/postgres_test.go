package sqlstore

import (
	"testing"

	"gatehouse/storage/storagetest"
)

func TestPostgres(t *testing.T) {
	storagetest.RequirePostgres(t)
	runBackend(t, storagetest.PostgresDSN)
}
