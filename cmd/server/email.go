package main

import (
	"log/slog"
	"net/http"
	"time"

	"gatehouse/accounts"
	"gatehouse/audit"
	"gatehouse/mail"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// newEmailPages wires the address settings and the password reset by
// email. Without --smtp-url they still serve, saying mail is off.
func newEmailPages(cfg config, store storage.Store, sessions *accounts.Sessions, logger *slog.Logger, newPage func(*http.Request, string) templates.Page, now func() time.Time, rec audit.Recorder) (*accounts.Email, error) {
	e := &accounts.Email{
		Store:    store,
		Sessions: sessions,
		Logger:   logger,
		NewPage:  newPage,
		Issuer:   cfg.Issuer,
		Now:      now,
		Limiter:  &accounts.StoreLimiter{Store: store},
		Audit:    rec,
	}
	if cfg.SMTPURL != "" {
		sender, err := mail.New(cfg.SMTPURL, cfg.MailFrom)
		if err != nil {
			return nil, err
		}
		e.Mailer = sender
	}
	return e, nil
}
