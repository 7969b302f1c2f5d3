package openai

import (
	"strings"

	"github.com/brightrun/brightrun/internal/inference"
	"github.com/brightrun/brightrun/internal/store"

	"github.com/google/uuid"
)

// Ids on /v1 are stable mappings of BrightRun ids: the uuid without its
// dashes behind OpenAI's prefix.
func hexID(id string) string { return strings.ReplaceAll(id, "-", "") }

func parseHex(prefix, id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != 32 {
		return "", false
	}
	u, err := uuid.Parse(rest)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// FileID is the /v1 id of a dataset.
func FileID(datasetID string) string { return "file-" + hexID(datasetID) }

// ParseFileID returns the dataset id of a file id.
func ParseFileID(id string) (string, bool) { return parseHex("file-", id) }

// resultFileID is the id of a job's metrics CSV (a file of purpose
// fine-tune-results, made from the job's metrics when it is read).
func resultFileID(ftID string) string { return "file-r" + hexID(ftID) }

func parseResultFileID(id string) (string, bool) { return parseHex("file-r", id) }

// JobID is the /v1 id of a fine-tuning job.
func JobID(ftID string) string { return "ftjob-" + hexID(ftID) }

// ParseJobID returns the fine-tuning job row id of a job id.
func ParseJobID(id string) (string, bool) { return parseHex("ftjob-", id) }

// FineTunedModelName is the fine_tuned_model of a job: the /v1 model id of
// its adapter (inference.AdapterModelID, what /v1/models lists and
// chat.completions accepts), with the job's suffix as its middle part when
// one was given, as OpenAI names fine-tuned models. Ids resolve by their
// last part, so both spellings reach the same adapter.
func FineTunedModelName(m store.Model, suffix *string) string {
	if suffix == nil || *suffix == "" {
		return inference.AdapterModelID(m)
	}
	return "ft:" + m.BaseModel + ":" + *suffix + ":" + m.ID
}
