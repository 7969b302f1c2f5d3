package openai

import (
	"strconv"
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

// CheckpointID is the /v1 id of a job's checkpoint at a step:
// ftckpt-<job hex>s<step>.
func CheckpointID(ftID string, step int) string {
	return "ftckpt-" + hexID(ftID) + "s" + strconv.Itoa(step)
}

// ParseCheckpointID returns the fine-tuning job row id and the step of a
// checkpoint id.
func ParseCheckpointID(id string) (string, int, bool) {
	rest, ok := strings.CutPrefix(id, "ftckpt-")
	if !ok || len(rest) < 34 || rest[32] != 's' {
		return "", 0, false
	}
	ftID, ok := parseHex("", rest[:32])
	step, err := strconv.Atoi(rest[33:])
	if !ok || err != nil || step < 1 || strconv.Itoa(step) != rest[33:] {
		return "", 0, false
	}
	return ftID, step, true
}

const ckptStep = ":ckpt-step-"

// CheckpointModelName is a checkpoint's fine_tuned_model_checkpoint, in
// OpenAI's form with BrightRun's ft: parts:
// ft:<base>:<suffix, or the job's name as a slug>:ftjob-<hex>:ckpt-step-<N>.
// Like fine-tuned model ids it resolves by its last parts (the job id and
// the step); the base and the label are decoration.
func CheckpointModelName(base string, suffix *string, jobName, ftID string, step int) string {
	if suffix != nil && *suffix != "" {
		return "ft:" + base + ":" + *suffix + ":" + JobID(ftID) + ckptStep + strconv.Itoa(step)
	}
	return inference.FineTunedID(base, jobName, JobID(ftID)) + ckptStep + strconv.Itoa(step)
}

// ParseCheckpointModel returns the fine-tuning job row id and the step of
// a checkpoint's ft: model id.
func ParseCheckpointModel(id string) (string, int, bool) {
	if !strings.HasPrefix(id, "ft:") {
		return "", 0, false
	}
	i := strings.LastIndex(id, ckptStep)
	if i < 0 {
		return "", 0, false
	}
	n := id[i+len(ckptStep):]
	step, err := strconv.Atoi(n)
	if err != nil || step < 1 || strconv.Itoa(step) != n {
		return "", 0, false
	}
	j := strings.LastIndex(id[:i], ":")
	if j < 0 {
		return "", 0, false
	}
	ftID, ok := ParseJobID(id[j+1 : i])
	return ftID, step, ok
}
