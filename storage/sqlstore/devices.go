package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/storage"
)

const deviceColumns = `signature, user_code_hash, client_id, status, subject, interval_ms, last_polled_at, requested_at, expires_at, data`

var (
	qCreateDeviceCode    = newQuery(`INSERT INTO device_codes (` + deviceColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	qGetDeviceCode       = newQuery(`SELECT ` + deviceColumns + ` FROM device_codes WHERE signature = ?`)
	qGetDeviceCodeByUser = newQuery(`SELECT ` + deviceColumns + ` FROM device_codes WHERE user_code_hash = ?`)
	qDeviceCodeExists    = newQuery(`SELECT COUNT(*) FROM device_codes WHERE signature = ?`)
	qPollDeviceCode      = newQuery(`UPDATE device_codes SET last_polled_at = ?, interval_ms = ? WHERE signature = ?`)
	qDecideDeviceCode    = newQuery(`UPDATE device_codes SET status = ?, subject = ?, data = ? WHERE signature = ? AND status = 'pending'`)
	qConsumeDeviceCode   = newQuery(`UPDATE device_codes SET status = 'used' WHERE signature = ? AND status = 'approved'`)
	// Batched like qDeleteExpired, for DeleteExpired.
	qDeleteExpiredDeviceCodes = newQuery(`DELETE FROM device_codes WHERE signature IN
		(SELECT signature FROM device_codes WHERE expires_at < ? LIMIT ?)`)
)

// CreateDeviceCode stores d. A taken signature or user code is
// storage.ErrConflict.
func (s *Store) CreateDeviceCode(ctx context.Context, d storage.DeviceCode) error {
	var polled any
	if !d.LastPolledAt.IsZero() {
		polled = s.time(d.LastPolledAt)
	}
	data := d.Data
	if data == nil {
		data = []byte{}
	}
	_, err := s.exec(ctx, qCreateDeviceCode, d.Signature, d.UserCodeHash, d.ClientID, string(d.Status), d.Subject,
		d.Interval.Milliseconds(), polled, s.time(d.RequestedAt), s.time(d.ExpiresAt), data)
	if err != nil {
		return fmt.Errorf("create device code: %w", s.d.translate(err))
	}
	return nil
}

func (s *Store) GetDeviceCode(ctx context.Context, signature string) (storage.DeviceCode, error) {
	d, err := s.scanDeviceCode(s.stmt(ctx, qGetDeviceCode).QueryRowContext(ctx, signature))
	if err != nil {
		return storage.DeviceCode{}, fmt.Errorf("get device code: %w", s.d.translate(err))
	}
	return d, nil
}

func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCodeHash string) (storage.DeviceCode, error) {
	d, err := s.scanDeviceCode(s.stmt(ctx, qGetDeviceCodeByUser).QueryRowContext(ctx, userCodeHash))
	if err != nil {
		return storage.DeviceCode{}, fmt.Errorf("get device code by user code: %w", s.d.translate(err))
	}
	return d, nil
}

// PollDeviceCode records a poll and the interval the device must keep from
// now on.
func (s *Store) PollDeviceCode(ctx context.Context, signature string, at time.Time, interval time.Duration) error {
	if err := s.execOne(ctx, qPollDeviceCode, s.time(at), interval.Milliseconds(), signature); err != nil {
		return fmt.Errorf("poll device code: %w", err)
	}
	return nil
}

// DecideDeviceCode moves a pending authorization to status, recording who
// decided and the request as granted.
func (s *Store) DecideDeviceCode(ctx context.Context, signature string, status storage.DeviceStatus, subject string, data []byte) error {
	return s.changeDeviceCode(ctx, "decide", qDecideDeviceCode, signature, string(status), subject, data, signature)
}

// ConsumeDeviceCode moves an approved authorization to used: the one
// redemption.
func (s *Store) ConsumeDeviceCode(ctx context.Context, signature string) error {
	return s.changeDeviceCode(ctx, "consume", qConsumeDeviceCode, signature, signature)
}

// changeDeviceCode runs a conditional update, telling a row in the wrong
// state (storage.ErrInactive) from no row (storage.ErrNotFound).
func (s *Store) changeDeviceCode(ctx context.Context, op string, q query, signature string, args ...any) error {
	err := s.execOne(ctx, q, args...)
	if errors.Is(err, storage.ErrNotFound) {
		var n int
		if err := s.stmt(ctx, qDeviceCodeExists).QueryRowContext(ctx, signature).Scan(&n); err != nil {
			return fmt.Errorf("%s device code: %w", op, err)
		}
		if n > 0 {
			err = storage.ErrInactive
		}
	}
	if err != nil {
		return fmt.Errorf("%s device code: %w", op, err)
	}
	return nil
}

func (s *Store) scanDeviceCode(row scanner) (storage.DeviceCode, error) {
	var (
		d        storage.DeviceCode
		status   string
		interval int64
		polled   *time.Time
	)
	err := row.Scan(&d.Signature, &d.UserCodeHash, &d.ClientID, &status, &d.Subject, &interval,
		nullTimeDest{&polled}, timeDest{&d.RequestedAt}, timeDest{&d.ExpiresAt}, &d.Data)
	if err != nil {
		return storage.DeviceCode{}, err
	}
	d.Status = storage.DeviceStatus(status)
	d.Interval = time.Duration(interval) * time.Millisecond
	if polled != nil {
		d.LastPolledAt = *polled
	}
	return d, nil
}
