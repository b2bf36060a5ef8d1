package accounts

import (
	"strings"
	"unicode/utf8"
)

// maxDeviceText bounds a user agent shown as is, when it names no browser
// this file knows: enough to recognise a tool, short enough for a phone.
const maxDeviceText = 60

// browsers are tried in order: most browsers also send the tokens of the
// ones they descend from (Edge and Opera say Chrome and Safari, Chrome
// says Safari), so each comes before its ancestors.
var browsers = []struct{ token, name string }{
	{"Edg/", "Edge"},
	{"EdgA/", "Edge"},
	{"EdgiOS/", "Edge"},
	{"Edge/", "Edge"},
	{"OPR/", "Opera"},
	{"OPiOS/", "Opera"},
	{"SamsungBrowser/", "Samsung Internet"},
	{"Vivaldi/", "Vivaldi"},
	{"YaBrowser/", "Yandex Browser"},
	{"FxiOS/", "Firefox"},
	{"Firefox/", "Firefox"},
	{"CriOS/", "Chrome"},
	{"HeadlessChrome/", "Headless Chrome"},
	{"Chromium/", "Chromium"},
	{"Chrome/", "Chrome"},
	{"Trident/", "Internet Explorer"},
}

// systems are tried in order for the same reason: Android and ChromeOS
// say Linux, iOS says "like Mac OS X".
var systems = []struct{ token, name string }{
	{"iPhone", "iOS"},
	{"iPod", "iOS"},
	{"iPad", "iPadOS"},
	{"Android", "Android"},
	{"CrOS", "ChromeOS"},
	{"Windows", "Windows"},
	{"Macintosh", "macOS"},
	{"Mac OS X", "macOS"},
	{"Linux", "Linux"},
	{"FreeBSD", "FreeBSD"},
}

// DescribeDevice words a user agent for the sessions list: the browser
// and the operating system, such as "Chrome on macOS". A user agent that
// names no known browser is shown as it is, cut short; none at all is
// "Unknown device". It tells devices apart for their owner and proves
// nothing: any client can send any user agent.
func DescribeDevice(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return "Unknown device"
	}
	browser := ""
	for _, b := range browsers {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	if browser == "" && strings.Contains(ua, "Safari/") && strings.Contains(ua, "Version/") {
		// Safari is the one that says only Safari, with its version apart.
		browser = "Safari"
	}
	if browser == "" {
		return shorten(ua, maxDeviceText)
	}
	for _, s := range systems {
		if strings.Contains(ua, s.token) {
			return browser + " on " + s.name
		}
	}
	return browser
}

// shorten cuts s to at most n characters, an ellipsis included.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return strings.TrimSpace(string(runes[:n-1])) + "…"
}
