package apperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// FromJSONField turns a decoding error of a JSON value (a wrong type, an
// unknown field) into a validation error that names the field in the
// client's words (`field "hyperparameters.lora_dropout" must be a number, not string`), never
// Go's ("cannot unmarshal string into Go struct field …"). prefix is the
// field the value sits under ("" at the top level). Other errors come back
// as a plain 400 with the decoder's message.
func FromJSONField(err error, prefix string) *Error {
	join := func(f string) string {
		switch {
		case prefix == "":
			return f
		case f == "":
			return prefix
		}
		return prefix + "." + f
	}
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		field := join(typ.Field)
		if field == "" {
			field = "(body)"
		}
		want := JSONTypeName(typ.Type.String())
		return Validation(fmt.Sprintf("field %q must be %s, not %s", field, want, typ.Value), map[string]string{field: "must be " + want})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := join(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
		return Validation(fmt.Sprintf("unknown field %q: check the field name against the API docs", name), map[string]string{name: "unknown field"})
	}
	return BadRequest("malformed JSON in %s: %v", join(""), err)
}

// JSONTypeName is a Go type as a JSON client would say it.
func JSONTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "*int"):
		return "an integer"
	case strings.HasPrefix(t, "float"), strings.HasPrefix(t, "*float"):
		return "a number"
	case t == "string", t == "*string":
		return "a string"
	case t == "bool", t == "*bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	}
	return "an object"
}
