package main

import (
	"log/slog"
	"net/http"
	"time"

	"gatehouse/accounts"
	"gatehouse/mail"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// newEmailPages wires the address settings and the password reset by
// email. Without --smtp-url they still serve, saying mail is off.
func newEmailPages(cfg config, store storage.Store, sessions *accounts.Sessions, logger *slog.Logger, newPage func(*http.Request, string) templates.Page) (*accounts.Email, error) {
	e := &accounts.Email{
		Store:    store,
		Sessions: sessions,
		Logger:   logger,
		NewPage:  newPage,
		Issuer:   cfg.Issuer,
		Now:      time.Now,
		// The sign-in's own per-account limit, on the same rows.
		Passwords:               &accounts.StoreLimiter{Store: store, Max: 5, Window: 15 * time.Minute},
		ResetsPerAddress:        &accounts.StoreLimiter{Store: store, Max: 5, Window: time.Hour},
		ResetsPerAccount:        &accounts.StoreLimiter{Store: store, Max: 3, Window: time.Hour},
		VerificationsPerAccount: &accounts.StoreLimiter{Store: store, Max: 5, Window: time.Hour},
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
