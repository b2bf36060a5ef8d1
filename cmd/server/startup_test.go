package main

import (
	"strings"
	"testing"
)

func TestStartupWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config
		want []string
	}{
		{"local http", config{Issuer: "http://localhost:8080", Addr: "localhost:8080", DB: defaultDB}, nil},
		{"http on every interface", config{Issuer: "http://localhost:8080", Addr: ":8080", DB: defaultDB}, []string{"http issuer on a non-loopback address"}},
		{"http public issuer", config{Issuer: "http://login.example.com", Addr: "127.0.0.1:8080", DB: defaultDB}, []string{"http issuer on a non-loopback address"}},
		{"https", config{Issuer: "https://login.example.com", Addr: ":8080", DB: defaultDB}, nil},
		{"open registration", config{Issuer: "https://a.example", DynamicRegistration: true, DB: defaultDB}, []string{"without --registration-token"}},
		{"guarded registration", config{Issuer: "https://a.example", DynamicRegistration: true, RegistrationToken: "t", DB: defaultDB}, nil},
		{"remote postgres in clear", config{Issuer: "https://a.example", DB: "postgres://u:pw@db.internal:5432/g?sslmode=disable"}, []string{"PostgreSQL at db.internal without TLS"}},
		{"remote postgres, default sslmode", config{Issuer: "https://a.example", DB: "postgres://u@db.internal/g"}, []string{"PostgreSQL at db.internal without TLS"}},
		{"remote postgres with TLS", config{Issuer: "https://a.example", DB: "postgres://u@db.internal/g?sslmode=verify-full"}, nil},
		{"local postgres", config{Issuer: "https://a.example", DB: "postgres://u@127.0.0.1/g?sslmode=disable"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := warnings(tc.cfg)
			if len(got) != len(tc.want) {
				t.Fatalf("warnings = %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q lacks %q", got[i], w)
				}
				if strings.Contains(got[i], "pw") {
					t.Errorf("warning %q shows the database password", got[i])
				}
			}
		})
	}
}

func TestStartupLines(t *testing.T) {
	srv := newTestServer(t)
	logs := srv.logs.String()
	for _, want := range []string{`"msg":"issuer","url":"` + srv.URL + `"`, `"msg":"database","engine":"sqlite"`, `"msg":"features","registration":"on","dynamic_registration":"off"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("start-up logs lack %s:\n%.1500s", want, logs)
		}
	}
}
