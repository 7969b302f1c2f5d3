package openai

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// Event is OpenAI's fine_tuning.job.event object.
type Event struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	CreatedAt int64  `json:"created_at"`
	Level     string `json:"level"` // info | warn | error
	Message   string `json:"message"`
	Type      string `json:"type"` // message | metrics
	Data      any    `json:"data"`
	at        time.Time
}

// StepMetrics are a metrics event's data, as OpenAI emits them (the token
// accuracies are the trainer's: the share of assistant tokens whose argmax
// prediction is the label).
type StepMetrics struct {
	Step                   int      `json:"step"`
	TrainLoss              *float64 `json:"train_loss"`
	TrainMeanTokenAccuracy *float64 `json:"train_mean_token_accuracy"`
	ValidLoss              *float64 `json:"valid_loss,omitempty"`
	ValidMeanTokenAccuracy *float64 `json:"valid_mean_token_accuracy,omitempty"`
	TotalSteps             *int     `json:"total_steps"`
}

const maxEvents = 10000

// events lists a job's events newest first: the fine-tuning job's own
// (created, files validated or failed), the training job's log lines, and
// one metrics event per step with a training or validation loss.
func (s *FineTuning) events(ctx context.Context, f store.FineTuneJob) ([]Event, error) {
	out := []Event{msgEvent("ftevent-created", f.CreatedAt, "info", "Created fine-tuning job: "+JobID(f.ID))}
	switch {
	case f.Status == store.FineTuneFailed && f.ErrorMessage != nil:
		out = append(out, msgEvent("ftevent-failed", derefTime(f.FinishedAt, f.UpdatedAt), "error", *f.ErrorMessage))
	case f.Status == store.FineTuneCancelled:
		out = append(out, msgEvent("ftevent-cancelled", derefTime(f.FinishedAt, f.UpdatedAt), "info", "Fine-tuning job cancelled while validating its files"))
	case f.JobID != nil:
		out = append(out, msgEvent("ftevent-validated", f.UpdatedAt, "info", "Files validated, moving job to queued state"))
	}
	if f.JobID != nil {
		lines, err := s.Store.JobEventsList(ctx, f.UserID, *f.JobID, maxEvents)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			lvl := l.Level
			if lvl == "debug" {
				lvl = "info"
			}
			out = append(out, msgEvent("ftevent-"+hexID(l.ID), l.CreatedAt, lvl, l.Message))
		}
		tj, err := s.Store.JobGet(ctx, f.UserID, *f.JobID)
		if err != nil {
			return nil, err
		}
		points, err := s.Store.MetricsList(ctx, f.UserID, *f.JobID, -1, maxEvents)
		if err != nil {
			return nil, err
		}
		for _, p := range points {
			if p.TrainingLoss == nil && p.ValidationLoss == nil {
				continue
			}
			at := derefTime(p.Timestamp, tj.UpdatedAt)
			msg := fmt.Sprintf("Step %d", p.Step)
			if tj.TotalSteps != nil {
				msg += fmt.Sprintf("/%d", *tj.TotalSteps)
			}
			if p.TrainingLoss != nil {
				msg += fmt.Sprintf(": training loss=%.4f", *p.TrainingLoss)
			}
			if p.ValidationLoss != nil {
				msg += fmt.Sprintf(", validation loss=%.4f", *p.ValidationLoss)
			}
			out = append(out, Event{ID: "ftevent-step" + strconv.Itoa(p.Step), Object: "fine_tuning.job.event", CreatedAt: at.Unix(), Level: "info",
				Message: msg, Type: "metrics", Data: StepMetrics{Step: p.Step, TrainLoss: p.TrainingLoss, TrainMeanTokenAccuracy: p.TrainMeanTokenAccuracy,
					ValidLoss: p.ValidationLoss, ValidMeanTokenAccuracy: p.ValidMeanTokenAccuracy, TotalSteps: tj.TotalSteps}, at: at})
		}
	}
	slices.SortStableFunc(out, func(a, b Event) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out, nil
}

func msgEvent(id string, at time.Time, level, msg string) Event {
	return Event{ID: id, Object: "fine_tuning.job.event", CreatedAt: at.Unix(), Level: level, Message: msg, Type: "message", Data: map[string]any{}, at: at}
}

func derefTime(t *time.Time, def time.Time) time.Time {
	if t == nil {
		return def
	}
	return *t
}

// Events pages a job's events newest first; after is the id of the last
// event of the previous page.
func (s *FineTuning) Events(ctx context.Context, userID, id, after string, limit int) (List[Event], error) {
	out := List[Event]{Object: "list", Data: []Event{}}
	f, err := s.get(ctx, userID, id)
	if err != nil {
		return out, err
	}
	all, err := s.events(ctx, f)
	if err != nil {
		return out, err
	}
	return page(all, after, limit, func(e Event) string { return e.ID })
}

// page cuts one cursor page out of a list.
func page[T any](all []T, after string, limit int, id func(T) string) (List[T], error) {
	out := List[T]{Object: "list", Data: []T{}}
	start := 0
	if after != "" {
		i := slices.IndexFunc(all, func(x T) bool { return id(x) == after })
		if i < 0 {
			return out, apperr.Validation("unknown cursor", map[string]string{"after": "pass the id of the last item of the previous page"})
		}
		start = i + 1
	}
	end := min(len(all), start+limit)
	out.Data = append(out.Data, all[start:end]...)
	out.HasMore = end < len(all)
	if n := len(out.Data); n > 0 {
		first, last := id(out.Data[0]), id(out.Data[n-1])
		out.FirstID, out.LastID = &first, &last
	}
	return out, nil
}

// ResultFile is a succeeded job's metrics CSV as a file object.
func (s *FineTuning) ResultFile(ctx context.Context, userID, fileID string) (File, store.FineTuneJob, bool, error) {
	ftID, ok := parseResultFileID(fileID)
	if !ok {
		return File{}, store.FineTuneJob{}, false, nil
	}
	f, err := s.Store.FineTuneGet(ctx, userID, ftID)
	if apperr.Is(err, apperr.KindNotFound) || (err == nil && f.JobID == nil) {
		return File{}, f, true, apperr.NotFound("file " + fileID)
	}
	if err != nil {
		return File{}, f, true, err
	}
	tj, err := s.Store.JobGet(ctx, userID, *f.JobID)
	if err != nil {
		return File{}, f, true, err
	}
	if tj.ArtifactID == nil {
		return File{}, f, true, apperr.NotFound("file " + fileID)
	}
	var b strings.Builder
	if err := s.WriteResults(ctx, f, &b); err != nil {
		return File{}, f, true, err
	}
	return File{ID: fileID, Object: "file", Bytes: int64(b.Len()), CreatedAt: derefTime(tj.CompletedAt, tj.UpdatedAt).Unix(),
		Filename: "step_metrics.csv", Purpose: PurposeResults, Status: "processed"}, f, true, nil
}

// WriteResults writes the metrics CSV in OpenAI's column layout; a value not
// measured at a step (validation between evaluations) is empty.
func (s *FineTuning) WriteResults(ctx context.Context, f store.FineTuneJob, w io.Writer) error {
	points, err := s.Store.MetricsList(ctx, f.UserID, *f.JobID, -1, maxEvents)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"})
	num := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'f', -1, 64)
	}
	for _, p := range points {
		_ = cw.Write([]string{strconv.Itoa(p.Step), num(p.TrainingLoss), num(p.TrainMeanTokenAccuracy), num(p.ValidationLoss), num(p.ValidMeanTokenAccuracy)})
	}
	cw.Flush()
	return cw.Error()
}
