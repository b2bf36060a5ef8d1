package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"gatehouse/audit"
)

var (
	qAppendAuditEvent = newQuery(`INSERT INTO audit_events (id, occurred_at, type, actor, subject, client_id, address, request_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	// Empty filter values match every row, so one prepared statement
	// serves every combination of filters.
	qListAuditEvents = newQuery(`SELECT id, occurred_at, type, actor, subject, client_id, address, request_id, detail
		FROM audit_events
		WHERE occurred_at >= ? AND (? = '' OR subject = ? OR actor = ?) AND (? = '' OR client_id = ?)
		ORDER BY occurred_at DESC, id DESC LIMIT ?`)
	qDeleteOldAuditEvents = newQuery(`DELETE FROM audit_events WHERE id IN
		(SELECT id FROM audit_events WHERE occurred_at < ? LIMIT ?)`)
)

var _ audit.Store = (*Store)(nil)

// AppendAuditEvent inserts e.
func (s *Store) AppendAuditEvent(ctx context.Context, e audit.Event) error {
	detail, err := json.Marshal(e.Detail)
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	if e.Detail == nil {
		detail = []byte("{}")
	}
	if _, err := s.exec(ctx, qAppendAuditEvent, e.ID, s.time(e.Time), string(e.Type), e.Actor, e.Subject, e.Client, e.Address, e.RequestID, string(detail)); err != nil {
		return fmt.Errorf("append audit event: %w", s.d.translate(err))
	}
	return nil
}

// ListAuditEvents returns the events f selects, newest first.
func (s *Store) ListAuditEvents(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	limit := int64(math.MaxInt64)
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	rows, err := s.stmt(ctx, qListAuditEvents).QueryContext(ctx, s.time(f.Since), f.User, f.User, f.User, f.Client, f.Client, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var events []audit.Event
	for rows.Next() {
		var e audit.Event
		var detail string
		if err := rows.Scan(&e.ID, timeDest{&e.Time}, (*string)(&e.Type), &e.Actor, &e.Subject, &e.Client, &e.Address, &e.RequestID, &detail); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return nil, fmt.Errorf("audit event %s: detail: %w", e.ID, err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return events, nil
}

// DeleteAuditEventsBefore deletes the events that happened before t and
// returns how many went. Safe to run from several instances at once.
func (s *Store) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	n, err := s.deleteBatches(ctx, qDeleteOldAuditEvents, t)
	if err != nil {
		return n, fmt.Errorf("delete old audit events: %w", err)
	}
	return n, nil
}
