package templates

import (
	"context"
	"io"
	"strings"

	"github.com/a-h/templ"
)

// EmailSection is the address part of the account settings: the address,
// whether it is verified, and the form to change it.
type EmailSection struct {
	Email    string
	Verified bool
	// Typed is what the user entered, echoed back after an error.
	Typed string
	// MailConfigured is false when the server has no SMTP relay, so
	// nothing can be verified from the page.
	MailConfigured bool
	// NeedPassword is true unless the user signed in moments ago.
	NeedPassword bool
	Error        string
	Notice       string
}

type EmailSettingsView struct {
	Page
	EmailSection
}

// NoticeView is a page with one message and a way on, for the outcome of a
// mailed link.
type NoticeView struct {
	Page
	Heading  string
	Message  string
	LinkText string
	LinkHref string
}

type ConfirmEmailView struct {
	Page
	Token    string
	Email    string
	Username string
}

type ForgotPasswordView struct {
	Page
	Email          string
	Error          string
	MailConfigured bool
	// Sent is the answer after a request, the same whether or not an
	// account has the address.
	Sent bool
}

type ResetPasswordView struct {
	Page
	Token    string
	Username string
	Error    string
}

// MailView fills a message: which server, to whom, and the link.
type MailView struct {
	ServerName string
	Username   string
	Address    string
	Link       string
	// Lifetime says how long the link works ("30 minutes").
	Lifetime string
}

// Plain-text alternatives. templ collapses whitespace and escapes for
// HTML, which is wrong for text/plain, so these write the same sentences
// as the HTML components with their line breaks kept.

// VerifyEmailText is the text/plain part of the verification mail.
func VerifyEmailText(v MailView) templ.Component {
	return textMail(
		"Hello "+v.Username+",",
		"",
		"Please confirm that "+v.Address+" is the email address of your account "+v.Username+" on "+v.ServerName+". Open this link:",
		"",
		v.Link,
		"",
		"The link works once, for "+v.Lifetime+".",
		"",
		"If you did not add this address, you can ignore this message: nothing changes unless you confirm.",
		"",
		"— "+v.ServerName,
	)
}

// ResetPasswordText is the text/plain part of the password reset mail.
func ResetPasswordText(v MailView) templ.Component {
	return textMail(
		"Hello "+v.Username+",",
		"",
		"Someone asked to reset the password of your account "+v.Username+" on "+v.ServerName+". To choose a new password, open this link:",
		"",
		v.Link,
		"",
		"The link works once, for "+v.Lifetime+". Choosing a new password signs your account out everywhere.",
		"",
		"If you did not ask for this, ignore this message: your password stays as it is.",
		"",
		"— "+v.ServerName,
	)
}

func textMail(lines ...string) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := io.WriteString(w, strings.Join(lines, "\n")+"\n")
		return err
	})
}
