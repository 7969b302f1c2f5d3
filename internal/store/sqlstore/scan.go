package sqlstore

import (
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"github.com/brightrun/brightrun/internal/costdoc"
)

// ts scans a timestamp from either engine: time.Time from PostgreSQL, text
// from SQLite (TimeLayout, or SQLite's own "YYYY-MM-DD HH:MM:SS").
type ts struct{ t *time.Time }

func (s ts) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*s.t = x.UTC()
		return nil
	case string:
		return s.parse(x)
	case []byte:
		return s.parse(string(x))
	case nil:
		*s.t = time.Time{}
		return nil
	}
	return fmt.Errorf("cannot scan %T into time", v)
}

func (s ts) parse(v string) error {
	for _, layout := range []string{TimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			*s.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("cannot parse time %q", v)
}

// nts scans a nullable timestamp into **time.Time.
type nts struct{ t **time.Time }

func (s nts) Scan(v any) error {
	if v == nil {
		*s.t = nil
		return nil
	}
	var t time.Time
	if err := (ts{&t}).Scan(v); err != nil {
		return err
	}
	*s.t = &t
	return nil
}

// nstr scans a nullable string as "".
type nstr struct{ s *string }

func (n nstr) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*n.s = ""
	case string:
		*n.s = x
	case []byte:
		*n.s = string(x)
	default:
		*n.s = fmt.Sprint(x)
	}
	return nil
}

// nullIfEmpty stores "" as NULL.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// njson scans a nullable JSON column (jsonb or TEXT) into a RawMessage.
type njson struct{ m *json.RawMessage }

func (n njson) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*n.m = nil
	case string:
		*n.m = json.RawMessage(x)
	case []byte:
		*n.m = append(json.RawMessage(nil), x...)
	default:
		return fmt.Errorf("cannot scan %T into JSON", v)
	}
	return nil
}

// costDetails decodes a cost record's details document by its cost type
// (NULL or null: no document).
func costDetails(typ string, raw json.RawMessage) (costdoc.Details, error) {
	return costdoc.Decode(typ, raw)
}

// costDetailsArg passes a cost record's details (none: NULL).
func costDetailsArg(d costdoc.Details) any {
	if d.Type() == "" {
		return nil
	}
	return docValue{d}
}

// doc scans a JSON column (jsonb or TEXT) into a typed document (a jobdoc,
// validate or notifydoc type, or catalog.Hyperparameters; cost details go
// through costDetails); NULL leaves the zero value. It is
// the one decoder of the typed documents, as docArg is their one encoder.
type doc[T any] struct{ v *T }

func (d doc[T]) Scan(v any) error {
	var raw json.RawMessage
	if err := (njson{&raw}).Scan(v); err != nil {
		return err
	}
	var zero T
	*d.v = zero
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, d.v); err != nil {
		return fmt.Errorf("decode %T: %w", zero, err)
	}
	return nil
}

// optDoc scans a nullable JSON column into a typed document: NULL is nil.
type optDoc[T any] struct{ v **T }

func (d optDoc[T]) Scan(v any) error {
	var t T
	*d.v = nil
	var raw json.RawMessage
	if err := (njson{&raw}).Scan(v); err != nil {
		return err
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := (doc[T]{&t}).Scan(v); err != nil {
		return err
	}
	*d.v = &t
	return nil
}

// docValue encodes a typed document for a jsonb/TEXT parameter; an encoding
// error fails the statement.
type docValue struct{ v any }

func (d docValue) Value() (driver.Value, error) {
	b, err := json.Marshal(d.v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", d.v, err)
	}
	return string(b), nil
}

// docArg passes a typed document to a jsonb/TEXT parameter.
func docArg[T any](v T) any { return docValue{v} }

// optDocArg passes an optional typed document (nil: NULL).
func optDocArg[T any](v *T) any {
	if v == nil {
		return nil
	}
	return docValue{v}
}

// collect scans every row with scan (closing rows); err is the query's error.
func collect[T any](rows *sql.Rows, err error, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
