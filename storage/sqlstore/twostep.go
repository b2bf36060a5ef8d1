package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/storage"
)

var (
	qCreateTOTP          = newQuery(`INSERT INTO totp (user_id, sealed, last_step, created_at) VALUES (?, ?, ?, ?)`)
	qGetTOTP             = newQuery(`SELECT user_id, sealed, last_step, created_at FROM totp WHERE user_id = ?`)
	qListTOTP            = newQuery(`SELECT user_id, sealed, last_step, created_at FROM totp ORDER BY user_id`)
	qResealTOTP          = newQuery(`UPDATE totp SET sealed = ? WHERE user_id = ? AND sealed = ?`)
	qUseTOTPStep         = newQuery(`UPDATE totp SET last_step = ? WHERE user_id = ? AND last_step < ?`)
	qDeleteTOTP          = newQuery(`DELETE FROM totp WHERE user_id = ?`)
	qDeleteRecoveryCodes = newQuery(`DELETE FROM recovery_codes WHERE user_id = ?`)
	qCreateRecoveryCode  = newQuery(`INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)`)
	qUseRecoveryCode     = newQuery(`UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`)
	qHasRecoveryCode     = newQuery(`SELECT count(*) FROM recovery_codes WHERE user_id = ? AND code_hash = ?`)
	qCountRecoveryCodes  = newQuery(`SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`)
)

func (s *Store) EnableTOTP(ctx context.Context, t storage.TOTP, recoveryHashes []string) error {
	err := s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.exec(ctx, qCreateTOTP, t.UserID, t.Sealed, t.LastStep, s.time(t.CreatedAt)); err != nil {
			return s.d.translate(err)
		}
		return s.putRecoveryCodes(ctx, t.UserID, recoveryHashes)
	})
	if err != nil {
		return fmt.Errorf("enable totp of %q: %w", t.UserID, err)
	}
	return nil
}

func (s *Store) GetTOTP(ctx context.Context, userID string) (storage.TOTP, error) {
	var t storage.TOTP
	err := s.stmt(ctx, qGetTOTP).QueryRowContext(ctx, userID).Scan(&t.UserID, &t.Sealed, &t.LastStep, timeDest{&t.CreatedAt})
	if err != nil {
		return storage.TOTP{}, fmt.Errorf("get totp of %q: %w", userID, s.d.translate(err))
	}
	return t, nil
}

func (s *Store) ListTOTP(ctx context.Context) ([]storage.TOTP, error) {
	rows, err := s.stmt(ctx, qListTOTP).QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list totp: %w", err)
	}
	defer rows.Close()
	var out []storage.TOTP
	for rows.Next() {
		var t storage.TOTP
		if err := rows.Scan(&t.UserID, &t.Sealed, &t.LastStep, timeDest{&t.CreatedAt}); err != nil {
			return nil, fmt.Errorf("list totp: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list totp: %w", err)
	}
	return out, nil
}

// ResealTOTP compares the sealed secret in the UPDATE itself, so an app
// set up again meanwhile keeps its new secret.
func (s *Store) ResealTOTP(ctx context.Context, userID string, old, sealed []byte) error {
	if err := s.execOne(ctx, qResealTOTP, sealed, userID, old); err != nil {
		return fmt.Errorf("reseal totp of %q: %w", userID, err)
	}
	return nil
}

// UseTOTPStep moves last_step forward only; the condition in the UPDATE,
// not a read before it, is what makes one of two racing callers the winner.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	err := s.execOne(ctx, qUseTOTPStep, step, userID, step)
	if errors.Is(err, storage.ErrNotFound) {
		if _, gerr := s.GetTOTP(ctx, userID); gerr == nil {
			err = storage.ErrInactive
		}
	}
	if err != nil {
		return fmt.Errorf("use totp step of %q: %w", userID, err)
	}
	return nil
}

func (s *Store) DisableTOTP(ctx context.Context, userID string) error {
	err := s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.exec(ctx, qDeleteRecoveryCodes, userID); err != nil {
			return err
		}
		return s.execOne(ctx, qDeleteTOTP, userID)
	})
	if err != nil {
		return fmt.Errorf("disable totp of %q: %w", userID, err)
	}
	return nil
}

func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error {
	err := s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.GetTOTP(ctx, userID); err != nil {
			return err
		}
		return s.putRecoveryCodes(ctx, userID, hashes)
	})
	if err != nil {
		return fmt.Errorf("replace recovery codes of %q: %w", userID, err)
	}
	return nil
}

// putRecoveryCodes replaces the user's codes; it runs inside a transaction.
func (s *Store) putRecoveryCodes(ctx context.Context, userID string, hashes []string) error {
	if _, err := s.exec(ctx, qDeleteRecoveryCodes, userID); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := s.exec(ctx, qCreateRecoveryCode, userID, h); err != nil {
			return s.d.translate(err)
		}
	}
	return nil
}

func (s *Store) UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) error {
	err := s.execOne(ctx, qUseRecoveryCode, s.time(at), userID, hash)
	if errors.Is(err, storage.ErrNotFound) {
		var n int
		if cerr := s.stmt(ctx, qHasRecoveryCode).QueryRowContext(ctx, userID, hash).Scan(&n); cerr == nil && n > 0 {
			err = storage.ErrInactive
		}
	}
	if err != nil {
		return fmt.Errorf("use recovery code of %q: %w", userID, err)
	}
	return nil
}

func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.stmt(ctx, qCountRecoveryCodes).QueryRowContext(ctx, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count recovery codes of %q: %w", userID, err)
	}
	return n, nil
}

func (s *Store) ResetMFA(ctx context.Context, userID string) error {
	err := s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.exec(ctx, qDeleteRecoveryCodes, userID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, qDeleteUserPasskeys, userID); err != nil {
			return err
		}
		_, err := s.exec(ctx, qDeleteTOTP, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset second factors of %q: %w", userID, err)
	}
	return nil
}
