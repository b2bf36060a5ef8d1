package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/storage"
)

const passkeyColumns = `id, user_id, name, credential_id, public_key, sign_count, aaguid, transports, backup_eligible, backup_state, created_at, last_used_at`

var (
	qCreatePasskey = newQuery(`INSERT INTO passkeys (` + passkeyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`)
	qListPasskeys  = newQuery(`SELECT ` + passkeyColumns + ` FROM passkeys WHERE user_id = ? ORDER BY created_at, id`)
	qGetPasskey    = newQuery(`SELECT ` + passkeyColumns + ` FROM passkeys WHERE credential_id = ?`)
	qRenamePasskey = newQuery(`UPDATE passkeys SET name = ? WHERE user_id = ? AND id = ?`)
	// The user's row is locked so that two removals of an account's last
	// two passkeys cannot both see the other one still there.
	qLockPasswordHash = newQuery(`SELECT password_hash FROM users WHERE id = ? FOR UPDATE`)
	qCountPasskeys    = newQuery(`SELECT count(*) FROM passkeys WHERE user_id = ?`)
	qDeletePasskey    = newQuery(`DELETE FROM passkeys WHERE user_id = ? AND id = ?`)
	qPasskeyExists    = newQuery(`SELECT 1 FROM passkeys WHERE user_id = ? AND id = ?`)
	// For ResetMFA.
	qDeleteUserPasskeys = newQuery(`DELETE FROM passkeys WHERE user_id = ?`)
	// The count condition makes one of two sign-ins that raced with the
	// same assertion counter the loser.
	qUsePasskey = newQuery(`UPDATE passkeys SET sign_count = ?, backup_state = ?, last_used_at = ?
		WHERE credential_id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`)
	qPasskeyCredentialExists = newQuery(`SELECT 1 FROM passkeys WHERE credential_id = ?`)

	qCreateChallenge = newQuery(`INSERT INTO webauthn_challenges (challenge_hash, purpose, binding, user_id, data, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	// One conditional DELETE both reads and consumes the challenge, so of
	// two racing finishes exactly one sees the row.
	qConsumeChallenge = newQuery(`DELETE FROM webauthn_challenges
		WHERE challenge_hash = ? AND purpose = ? AND binding = ? AND expires_at > ?
		RETURNING challenge_hash, purpose, binding, user_id, data, created_at, expires_at`)
	qDeleteExpiredChallenges = newQuery(`DELETE FROM webauthn_challenges WHERE challenge_hash IN
		(SELECT challenge_hash FROM webauthn_challenges WHERE expires_at < ? LIMIT ?)`)
)

func (s *Store) CreatePasskey(ctx context.Context, p storage.Passkey) error {
	aaguid := p.AAGUID
	if aaguid == nil {
		aaguid = []byte{}
	}
	_, err := s.exec(ctx, qCreatePasskey, p.ID, p.UserID, p.Name, p.CredentialID, p.PublicKey, int64(p.SignCount),
		aaguid, encodeList(p.Transports), p.BackupEligible, p.BackupState, s.time(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("create passkey: %w", s.d.translate(err))
	}
	return nil
}

func (s *Store) ListPasskeys(ctx context.Context, userID string) ([]storage.Passkey, error) {
	rows, err := s.stmt(ctx, qListPasskeys).QueryContext(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	defer rows.Close()
	var out []storage.Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, fmt.Errorf("list passkeys: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	return out, nil
}

func (s *Store) GetPasskeyByCredentialID(ctx context.Context, credentialID []byte) (storage.Passkey, error) {
	p, err := scanPasskey(s.stmt(ctx, qGetPasskey).QueryRowContext(ctx, credentialID))
	if err != nil {
		return storage.Passkey{}, fmt.Errorf("get passkey: %w", s.d.translate(err))
	}
	return p, nil
}

func (s *Store) RenamePasskey(ctx context.Context, userID, id, name string) error {
	if err := s.execOne(ctx, qRenamePasskey, name, userID, id); err != nil {
		return fmt.Errorf("rename passkey: %w", err)
	}
	return nil
}

// DeletePasskey keeps an account without a password from losing its last
// way to sign in.
func (s *Store) DeletePasskey(ctx context.Context, userID, id string) error {
	err := s.InTx(ctx, func(ctx context.Context) error {
		var hash string
		if err := s.stmt(ctx, qLockPasswordHash).QueryRowContext(ctx, userID).Scan(&hash); err != nil {
			return s.d.translate(err)
		}
		var one int
		if err := s.stmt(ctx, qPasskeyExists).QueryRowContext(ctx, userID, id).Scan(&one); err != nil {
			return s.d.translate(err)
		}
		if hash == "" {
			var n int
			if err := s.stmt(ctx, qCountPasskeys).QueryRowContext(ctx, userID).Scan(&n); err != nil {
				return err
			}
			if n <= 1 {
				return storage.ErrLastPasskey
			}
		}
		return s.execOne(ctx, qDeletePasskey, userID, id)
	})
	if err != nil {
		return fmt.Errorf("delete passkey: %w", err)
	}
	return nil
}

func (s *Store) UsePasskey(ctx context.Context, credentialID []byte, signCount uint32, backupState bool, at time.Time) error {
	n := int64(signCount)
	res, err := s.exec(ctx, qUsePasskey, n, backupState, s.time(at), credentialID, n, n)
	if err != nil {
		return fmt.Errorf("use passkey: %w", s.d.translate(err))
	}
	changed, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("use passkey: %w", err)
	}
	if changed == 1 {
		return nil
	}
	var one int
	if err := s.stmt(ctx, qPasskeyCredentialExists).QueryRowContext(ctx, credentialID).Scan(&one); err != nil {
		return fmt.Errorf("use passkey: %w", s.d.translate(err))
	}
	return fmt.Errorf("use passkey: sign count %d not after the stored one: %w", signCount, storage.ErrInactive)
}

func scanPasskey(row interface{ Scan(...any) error }) (storage.Passkey, error) {
	var p storage.Passkey
	var count int64
	err := row.Scan(&p.ID, &p.UserID, &p.Name, &p.CredentialID, &p.PublicKey, &count, &p.AAGUID, listDest{&p.Transports},
		&p.BackupEligible, &p.BackupState, timeDest{&p.CreatedAt}, nullTimeDest{&p.LastUsedAt})
	if err != nil {
		return storage.Passkey{}, err
	}
	if count < 0 || count > int64(^uint32(0)) {
		return storage.Passkey{}, errors.New("sign count out of range")
	}
	p.SignCount = uint32(count)
	return p, nil
}

func (s *Store) CreateWebAuthnChallenge(ctx context.Context, c storage.WebAuthnChallenge) error {
	_, err := s.exec(ctx, qCreateChallenge, c.Hash, c.Purpose, c.Binding, c.UserID, c.Data, s.time(c.CreatedAt), s.time(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create webauthn challenge: %w", s.d.translate(err))
	}
	return nil
}

func (s *Store) ConsumeWebAuthnChallenge(ctx context.Context, hash, purpose, binding string, now time.Time) (storage.WebAuthnChallenge, error) {
	var c storage.WebAuthnChallenge
	err := s.stmt(ctx, qConsumeChallenge).QueryRowContext(ctx, hash, purpose, binding, s.time(now)).Scan(
		&c.Hash, &c.Purpose, &c.Binding, &c.UserID, &c.Data, timeDest{&c.CreatedAt}, timeDest{&c.ExpiresAt})
	if err != nil {
		return storage.WebAuthnChallenge{}, fmt.Errorf("consume webauthn challenge: %w", s.d.translate(err))
	}
	return c, nil
}
