package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/textsafe"
	"github.com/go-json-experiment/json/jsontext"
)

// DuplicateKey returns the path of the first object key that appears twice
// in one object of the JSON document data ("hyperparameters.epochs",
// "items[1].k"), or "" when there is none (or data is not valid JSON: the
// decoder reports that). encoding/json keeps the last of two equal keys,
// silently; a client that sends both meant something we would otherwise
// ignore. jsontext refuses duplicate names by default.
func DuplicateKey(data []byte) string {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	for {
		if _, err := dec.ReadToken(); err != nil {
			var se *jsontext.SyntacticError
			if errors.As(err, &se) && errors.Is(se.Err, jsontext.ErrDuplicateName) {
				return pointerPath(se.JSONPointer)
			}
			return ""
		}
	}
}

// pointerPath writes a JSON pointer (/items/1/k) the way our error messages
// name fields (items[1].k).
func pointerPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// CheckText refuses text a user sent that cannot be stored or shown safely:
// NUL bytes and control characters other than tab and newlines, in any
// string field of v (a decoded request), including inside raw JSON values.
// The error names the field.
func CheckText(v any) error {
	f := apperr.FieldErrors{}
	checkValue(reflect.ValueOf(v), "", f)
	if err := f.Err(); err != nil {
		var names []string
		for k := range f {
			names = append(names, k)
		}
		return apperr.Validation(fmt.Sprintf("field %q %s", names[0], f[names[0]]), map[string]string(f))
	}
	return nil
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

func checkValue(v reflect.Value, path string, f apperr.FieldErrors) {
	if len(f) > 0 || !v.IsValid() {
		return
	}
	if v.Type() == rawMessageType {
		var x any
		if json.Unmarshal(v.Bytes(), &x) == nil {
			checkValue(reflect.ValueOf(x), path, f)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			checkValue(v.Elem(), path, f)
		}
	case reflect.String:
		if p := textsafe.Problem(v.String(), true); p != "" {
			f.Add(fieldName(path), p)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if sf.Anonymous && sf.Tag.Get("json") == "" {
				checkValue(v.Field(i), path, f)
				continue
			}
			checkValue(v.Field(i), joinPath(path, name), f)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			checkValue(v.Index(i), path+"["+strconv.Itoa(i)+"]", f)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			k := fmt.Sprint(it.Key().Interface())
			if p := textsafe.Problem(k, false); p != "" {
				f.Add(fieldName(joinPath(path, "(key)")), p)
				return
			}
			checkValue(it.Value(), joinPath(path, k), f)
		}
	}
}

func fieldName(path string) string {
	if path == "" {
		return "(body)"
	}
	return path
}
