package inference

import (
	"strings"

	"github.com/brightrun/brightrun/internal/store"
)

// AdapterModelID is a trained model's id on the OpenAI-compatible API,
// following OpenAI's fine-tune convention: ft:<base-model>:<slug>:<model-id>.
// The slug comes from the model's name and is only decoration: the id
// resolves by its last part, so renaming a model keeps old ids working.
func AdapterModelID(m store.Model) string {
	return FineTunedID(m.BaseModel, m.Name, m.ID)
}

// FineTunedID writes ft:<base>:<slug of label>:<model-id> (label: the
// model's name, or an OpenAI job's suffix).
func FineTunedID(base, label, modelID string) string {
	return "ft:" + base + ":" + slug(label) + ":" + modelID
}

// ParseAdapterModelID returns the model id part of an ft: id.
func ParseAdapterModelID(id string) (string, bool) {
	if !strings.HasPrefix(id, "ft:") {
		return "", false
	}
	i := strings.LastIndex(id, ":")
	if i <= 2 || i == len(id)-1 {
		return "", false
	}
	return id[i+1:], true
}

func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		return "adapter"
	}
	return s
}
