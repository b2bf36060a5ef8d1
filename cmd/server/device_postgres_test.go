package main

import (
	"testing"

	"gatehouse/storage/storagetest"
)

// TestDevicePostgres runs the device grant's race and error answers and
// the refresh grace window on PostgreSQL, whose row locking differs from
// SQLite's single writer.
func TestDevicePostgres(t *testing.T) {
	storagetest.RequirePostgres(t)
	for name, run := range map[string]func(*testing.T, *testServer){
		"race":  deviceRaceOn,
		"grace": graceRaceOn,
	} {
		t.Run(name, func(t *testing.T) {
			run(t, newTestServer(t, "--db", storagetest.PostgresDSN(t), "--refresh-grace", "5s"))
		})
	}
}
