package ui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/dustin/go-humanize"
)

// humanBytes formats a size in binary units ("82 KiB").
func humanBytes(n int64) string {
	if n < 0 {
		return "—"
	}
	return humanize.IBytes(uint64(n))
}

// groupDigits writes 1234567 as 1,234,567.
func groupDigits(n int64) string { return humanize.Comma(n) }

// trainable is a dataset's trainable example count, or "—" before validation.
func trainable(d store.Dataset) string {
	if d.TotalTrainingPairs == nil {
		return "—"
	}
	n := *d.TotalTrainingPairs
	if d.TotalValidationPairs != nil {
		n += *d.TotalValidationPairs
	}
	return groupDigits(int64(n))
}

// stars renders a 1–5 rating.
func stars(n int) string {
	if n < 0 {
		n = 0
	}
	if n > 5 {
		n = 5
	}
	return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
}

// qnum formats an optional number (a quality metric), "—" if absent.
func qnum(v *float64, digits int) string {
	if v == nil {
		return "—"
	}
	return strconv.FormatFloat(*v, 'f', digits, 64)
}

// labels are the human words for the ids pages show: job statuses and
// stages, notification and cost types. An id without an entry is written
// with spaces and a capital ("some_id" → "Some id").
var labels = map[string]string{
	"queued": "Queued", "initializing": "Starting", "running": "Running", "completed": "Completed",
	"failed": "Failed", "cancelled": "Cancelled", "downloading": "Downloading data", "preparing": "Preparing data",
	"loading_model": "Loading model", "training": "Training", "evaluating": "Evaluating", "saving": "Saving",
	"uploading": "Uploading", "validating": "Validating", "ready": "Ready", "error": "Has errors",
	"job_started": "Job started", "job_completed": "Job completed", "job_failed": "Job failed",
	"job_cancelled": "Job cancelled", "artifact_ready": "Adapter ready", "budget_alert": "Budget",
	"dataset_ready": "Dataset ready", "dataset_error": "Dataset errors", "compute": "Compute", "storage": "Storage",
	"inference": "Inference", "custom": "Custom", "online": "Online", "offline": "Offline", "busy": "Running a job",
	"learning_rate": "Learning rate", "num_epochs": "Epochs", "batch_size": "Batch size", "lora_rank": "LoRA rank",
	"lora_alpha": "LoRA alpha", "lora_dropout": "LoRA dropout", "max_seq_length": "Max sequence length",
	"warmup_steps": "Warmup steps", "weight_decay": "Weight decay", "gradient_accumulation_steps": "Gradient accumulation steps",
	"gradient_checkpointing": "Gradient checkpointing", "lr_scheduler": "Learning-rate scheduler", "target_modules": "Target modules",
}

// Label is the human word for an id.
func Label(id string) string {
	if l, ok := labels[id]; ok {
		return l
	}
	s := strings.ReplaceAll(id, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// lossChange words a loss change in percent (positive = the loss fell):
// "15.8% lower", "15.8% higher", "unchanged".
func lossChange(pct *float64) string {
	if pct == nil {
		return ""
	}
	r := math.Round(*pct*10) / 10
	switch {
	case r > 0:
		return strconv.FormatFloat(r, 'f', 1, 64) + "% lower"
	case r < 0:
		return strconv.FormatFloat(-r, 'f', 1, 64) + "% higher"
	}
	return "unchanged"
}

// plural writes "1 error", "2 errors", "1,234 errors".
func plural(n int, word string) string {
	s := groupDigits(int64(n)) + " " + word
	if n != 1 {
		s += "s"
	}
	return s
}

// costDetails words a cost record's details document.
func costDetails(d costdoc.Details) string {
	switch {
	case d.Compute != nil:
		c := d.Compute
		s := fmt.Sprintf("%s of %d× %s", humanSeconds(c.Seconds), max(c.NumGPUs, 1), c.GPUType)
		if c.RatePerHour > 0 {
			s += fmt.Sprintf(" at $%.2f per GPU-hour", c.RatePerHour)
		} else {
			s += ", free"
		}
		if c.Attempts > 1 {
			s += fmt.Sprintf(" over %d attempts", c.Attempts)
		}
		if c.Status != "" {
			s += " · job " + strings.ToLower(Label(c.Status))
		}
		return s
	case d.Storage != nil:
		st := d.Storage
		return fmt.Sprintf("%s stored on %s (datasets %s, adapters %s) at $%.3f per GB-month",
			humanize.Bytes(uint64(max(st.DatasetBytes+st.ArtifactBytes, 0))), st.Day, humanize.Bytes(uint64(max(st.DatasetBytes, 0))),
			humanize.Bytes(uint64(max(st.ArtifactBytes, 0))), st.PricePerGBMon)
	case d.Inference != nil:
		in := d.Inference
		what := in.Model
		if in.ModelID != nil && *in.ModelID != "" {
			what = "adapter on " + in.Model
		}
		s := fmt.Sprintf("%s prompt + %s generated tokens, %s", groupDigits(int64(in.PromptTokens)), groupDigits(int64(in.CompletionTokens)), what)
		if in.GPUType != "" {
			s += " on " + in.GPUType
		}
		if in.PricePerMillionTokens > 0 {
			s += fmt.Sprintf(" at $%.2f per million tokens", in.PricePerMillionTokens)
		} else {
			s += ", free"
		}
		if in.Source == "playground" {
			s += " · playground"
		}
		return s
	}
	return ""
}

// humanSeconds writes 4,290 s as "1 h 11 min 30 s".
func humanSeconds(s float64) string {
	d := time.Duration(math.Round(s)) * time.Second
	h, m, sec := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%d h %d min", h, m)
	case m > 0:
		return fmt.Sprintf("%d min %d s", m, sec)
	}
	return fmt.Sprintf("%d s", sec)
}
