package clients

import "testing"

func TestMatchRedirectURI(t *testing.T) {
	cases := []struct {
		registered, requested string
		want                  bool
	}{
		// Exact matches, loopback or not.
		{"https://app.example/cb", "https://app.example/cb", true},
		{"http://127.0.0.1:3000/cb", "http://127.0.0.1:3000/cb", true},
		{"com.example.app:/cb", "com.example.app:/cb", true},
		{"http://localhost/cb", "http://localhost/cb", true},

		// A portless http loopback URI takes any port, on each loopback host.
		{"http://127.0.0.1/cb", "http://127.0.0.1:8080/cb", true},
		{"http://[::1]/cb", "http://[::1]:49152/cb", true},
		{"http://localhost/cb", "http://localhost:54321/cb", true},
		{"http://localhost/cb", "http://localhost:1/cb", true},
		{"http://localhost/cb", "http://localhost:65535/cb", true},
		{"http://localhost/cb?x=1", "http://localhost:5000/cb?x=1", true},
		{"http://127.0.0.1", "http://127.0.0.1:8080", true},

		// ...and nothing else changes with the port.
		{"http://localhost/cb", "http://localhost:5000/cb?x=1", false},
		{"http://localhost/cb?x=1", "http://localhost:5000/cb?x=2", false},
		{"http://localhost/cb", "http://localhost:5000/cb/", false},
		{"http://localhost/cb", "http://localhost:5000/%63b", false},
		{"http://localhost/cb", "http://localhost:5000/CB", false},
		{"http://localhost/cb", "http://LOCALHOST:5000/cb", false},
		{"http://localhost/cb", "https://localhost:5000/cb", false},
		{"http://localhost/cb", "HTTP://localhost:5000/cb", false},
		{"http://localhost/cb", "http://127.0.0.1:5000/cb", false},
		{"http://127.0.0.1/cb", "http://[::1]:5000/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.2:5000/cb", false},
		{"http://localhost/cb", "http://localhost:5000/cb#f", false},
		{"http://localhost/cb", "http://user@localhost:5000/cb", false},
		{"http://localhost/cb", "http://localhost.evil.example:5000/cb", false},
		{"http://localhost/cb", "http://localhost:5000@evil.example/cb", false},

		// Ports must be one plain decimal number in range.
		{"http://localhost/cb", "http://localhost:/cb", false},
		{"http://localhost/cb", "http://localhost:0/cb", false},
		{"http://localhost/cb", "http://localhost:65536/cb", false},
		{"http://localhost/cb", "http://localhost:08080/cb", false},
		{"http://localhost/cb", "http://localhost:+80/cb", false},
		{"http://localhost/cb", "http://localhost:80:80/cb", false},
		{"http://localhost/cb", "http://localhost:8o/cb", false},
		{"http://localhost/cb", "http://localhost:123456/cb", false},

		// A registered port is exact; https loopback gets no freedom.
		{"http://127.0.0.1:3000/cb", "http://127.0.0.1:3001/cb", false},
		{"http://localhost:3000/cb", "http://localhost/cb", false},
		{"https://127.0.0.1/cb", "https://127.0.0.1:8080/cb", false},
		{"https://127.0.0.1/cb", "http://127.0.0.1:8080/cb", false},
		{"https://localhost/cb", "https://localhost:8443/cb", false},

		// Nothing is decoded, anywhere.
		{"https://app.example/cb", "https://app.example/%63b", false},
		{"https://app.example/%63b", "https://app.example/cb", false},
		{"https://app.example/cb", "https://APP.EXAMPLE/cb", false},
		{"https://app.example/cb", "https://app.example:443/cb", false},
		{"https://app.example/cb", "https://app.example/cb/", false},
		{"https://app.example/cb", "", false},
		{"com.example.app:/cb", "com.example.app:/cb/", false},
	}
	for _, c := range cases {
		t.Run(c.registered+" "+c.requested, func(t *testing.T) {
			got, ok := MatchRedirectURI([]string{"https://other.example/cb", c.registered}, c.requested)
			if ok != c.want {
				t.Fatalf("MatchRedirectURI(%q, %q) = %v, want %v", c.registered, c.requested, ok, c.want)
			}
			if ok && got != c.registered {
				t.Fatalf("matched %q, want the registered %q", got, c.registered)
			}
		})
	}
}

func FuzzMatchRedirectURI(f *testing.F) {
	for _, s := range [][2]string{
		{"http://localhost/cb", "http://localhost:8080/cb"},
		{"http://[::1]/cb", "http://[::1]:8080/cb"},
		{"http://127.0.0.1:3000/cb", "http://127.0.0.1:3001/cb"},
		{"https://127.0.0.1/cb", "https://127.0.0.1:8080/cb"},
		{"https://app.example/cb", "https://app.example/%63b"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, registered, requested string) {
		got, ok := MatchRedirectURI([]string{registered}, requested)
		if !ok {
			return
		}
		if got != registered {
			t.Fatalf("matched %q, not the registered %q", got, registered)
		}
		if requested == registered {
			return
		}
		// Any other match is the registered portless http loopback URI
		// with a port inserted after the host, and nothing else changed.
		host, isLoopback := portlessLoopbackHost(registered)
		if !isLoopback {
			t.Fatalf("%q matched %q, which has no port freedom", requested, registered)
		}
		prefix := "http://" + host + ":"
		rest := registered[len("http://"+host):]
		if len(requested) <= len(prefix)+len(rest) || requested[:len(prefix)] != prefix || requested[len(requested)-len(rest):] != rest {
			t.Fatalf("%q matched %q but is not it with a port", requested, registered)
		}
		if !validPort(requested[len(prefix) : len(requested)-len(rest)]) {
			t.Fatalf("%q matched %q with an invalid port", requested, registered)
		}
	})
}
