package sqlstore

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/jobdoc"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/google/uuid"
)

const execCols = jobCols + `, j.attempt, j.job_token_hash, j.lease_expires_at, j.attempt_started_at, j.run_seconds, j.checkpoint,
	j.error_class, j.max_retries, j.agent_id, j.pause_requested_at, j.checkpoint_at`

func scanExec(sc interface{ Scan(...any) error }) (store.ExecJob, error) {
	var e store.ExecJob
	// scanJob builds its own destinations; append the execution columns.
	row := &combined{sc: sc, extra: func() []any {
		return []any{&e.Attempt, nstr{&e.JobTokenHash}, nts{&e.LeaseExpiresAt}, nts{&e.AttemptStartedAt}, &e.RunSeconds, optDoc[jobdoc.Checkpoint]{&e.Checkpoint},
			nstr{&e.ErrorClass}, &e.MaxRetries, nstr{&e.AgentID}, nts{&e.PauseRequestedAt}, nts{&e.CheckpointAt}}
	}}
	j, err := scanJob(row)
	e.Job = j
	return e, err
}

// combined appends extra destinations to a scanner call.
type combined struct {
	sc    interface{ Scan(...any) error }
	extra func() []any
}

func (c *combined) Scan(dest ...any) error { return c.sc.Scan(append(dest, c.extra()...)...) }

// AgentCreate registers an agent.
func (s *Store) AgentCreate(ctx context.Context, name, tokenHash string, at time.Time) (store.Agent, error) {
	a := store.Agent{ID: uuid.NewString(), Name: name, CreatedAt: at.UTC().Truncate(time.Millisecond)}
	err := s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, "INSERT INTO agents (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)", a.ID, name, tokenHash, a.CreatedAt)
		return err
	})
	return a, err
}

// AgentByTokenHash finds a non-revoked agent.
func (s *Store) AgentByTokenHash(ctx context.Context, hash string) (store.Agent, error) {
	var a store.Agent
	err := s.readTx(ctx, func(x q) error {
		return x.queryRow(ctx, "SELECT "+agentCols+" FROM agents WHERE token_hash = ?", hash).Scan(agentDest(&a)...)
	})
	if errors.Is(err, errNoRows) || (err == nil && a.RevokedAt != nil) {
		return a, apperr.Unauthorized("the agent token is not valid (create one with `brightrun agents create --name N`)")
	}
	return a, err
}

// AgentSeen records the agent's capabilities and last contact.
func (s *Store) AgentSeen(ctx context.Context, id string, caps jobdoc.Capabilities, version, hostname string, at time.Time) error {
	return s.writeTx(ctx, func(x q) error {
		_, err := x.exec(ctx, "UPDATE agents SET capabilities = ?, version = ?, hostname = ?, last_seen_at = ? WHERE id = ?", docArg(caps), version, hostname, at, id)
		return err
	})
}

func (s *Store) event(ctx context.Context, x q, jobID string, attempt int, level, stage, msg string, at time.Time) error {
	_, err := x.exec(ctx, "INSERT INTO training_job_events (id, job_id, attempt, level, stage, message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		uuid.NewString(), jobID, attempt, level, nullIfEmpty(stage), msg, at)
	return err
}

// effectsTx writes a step's events, notifications and cost records.
func (s *Store) effectsTx(ctx context.Context, x q, jobID string, attempt int, eff store.Effects, at time.Time) error {
	for _, ev := range eff.Events {
		if ev.CreatedAt.IsZero() {
			ev.CreatedAt = at
		}
		if err := s.event(ctx, x, jobID, attempt, ev.Level, ev.Stage, ev.Message, ev.CreatedAt); err != nil {
			return err
		}
	}
	for _, n := range eff.Notifications {
		if n.At.IsZero() {
			n.At = at
		}
		if err := s.notifyTx(ctx, x, n, n.At); err != nil {
			return err
		}
	}
	for _, c := range eff.CostRecords {
		if _, err := x.exec(ctx, `INSERT INTO cost_records (id, user_id, job_id, cost_type, amount, details, billing_period, recorded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, uuid.NewString(), c.UserID, nullIfEmpty(c.JobID), c.Type, c.Amount, costDetailsArg(c.Details), c.BillingPeriod, c.At); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) notifyTx(ctx context.Context, x q, p store.NotificationCreateParams, at time.Time) error {
	meta := optDocArg(p.Metadata)
	prio := p.Priority
	if prio == "" {
		prio = "medium"
	}
	_, err := x.exec(ctx, `INSERT INTO notifications (id, user_id, type, title, message, priority, read, action_url, metadata, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, uuid.NewString(), p.UserID, p.Type, p.Title, p.Message, prio, false, nullIfEmpty(p.ActionURL), meta, at)
	return err
}

// JobClaim atomically hands the oldest matching queued job to an agent.
func (s *Store) JobClaim(ctx context.Context, p store.ClaimParams) (store.Claim, bool, error) {
	var c store.Claim
	found := false
	err := s.writeTx(ctx, func(x q) error {
		lock := ""
		if s.d.Name == "postgres" {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var id string
		where, args := "status = 'queued' AND gpu_type = ? AND num_gpus <= ?", []any{p.GPUType, p.GPUCount}
		if p.JobID != "" {
			where, args = where+" AND id = ?", append(args, p.JobID)
		}
		err := x.queryRow(ctx, "SELECT id FROM training_jobs WHERE "+where+" ORDER BY queued_at, id LIMIT 1"+lock, args...).Scan(&id)
		if errors.Is(err, errNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		pre, err := scanExec(x.queryRow(ctx, "SELECT "+execCols+jobFrom+"WHERE j.id = ?", id))
		if err != nil {
			return err
		}
		eff, err := p.Decide(pre)
		if err != nil {
			return err
		}
		res, err := x.exec(ctx, `UPDATE training_jobs SET status = ?, current_stage = ?, attempt = ?,
			job_token_hash = ?, lease_expires_at = ?, attempt_started_at = ?, started_at = COALESCE(started_at, ?), agent_id = ?, updated_at = ?
			WHERE id = ? AND status = ? AND attempt = ?`, eff.Status, eff.Stage, pre.Attempt+1, p.TokenHash(id, pre.Attempt+1), p.Now.Add(p.Lease), p.Now, p.Now,
			p.AgentID, p.Now, id, pre.Status, pre.Attempt)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		e, err := scanExec(x.queryRow(ctx, "SELECT "+execCols+jobFrom+"WHERE j.id = ?", id))
		if err != nil {
			return err
		}
		c.Job = e.Job
		if c.Dataset, err = scanDataset(x.queryRow(ctx, "SELECT "+datasetCols+" FROM datasets WHERE id = ?", e.DatasetID)); err != nil {
			return err
		}
		if err := s.effectsTx(ctx, x, id, e.Attempt, eff, p.Now); err != nil {
			return err
		}
		found = true
		return nil
	})
	return c, found, err
}

// JobExec loads a job with its execution columns (system).
func (s *Store) JobExec(ctx context.Context, id string) (store.ExecJob, error) {
	var e store.ExecJob
	if !validID(id) {
		return e, apperr.NotFound("training job")
	}
	err := s.readTx(ctx, func(x q) error {
		var err error
		e, err = scanExec(x.queryRow(ctx, "SELECT "+execCols+jobFrom+"WHERE j.id = ?", id))
		return err
	})
	if errors.Is(err, errNoRows) {
		return e, apperr.NotFound("training job")
	}
	return e, err
}

func (s *Store) execForUpdate(ctx context.Context, x q, id string, attempt int) (store.ExecJob, error) {
	e, err := scanExec(x.queryRow(ctx, "SELECT "+execCols+jobFrom+"WHERE j.id = ?", id))
	if errors.Is(err, errNoRows) {
		return e, apperr.NotFound("training job")
	}
	if err != nil {
		return e, err
	}
	if attempt != 0 && e.Attempt != attempt {
		return e, apperr.Conflict("this attempt was superseded by attempt %d: stop working on the job", e.Attempt)
	}
	return e, nil
}

// JobHeartbeat extends the lease and records progress and cost so far.
func (s *Store) JobHeartbeat(ctx context.Context, p store.HeartbeatParams) (string, error) {
	stop := ""
	err := s.writeTx(ctx, func(x q) error {
		e, err := s.execForUpdate(ctx, x, p.JobID, p.Attempt)
		if err != nil {
			return err
		}
		eff, err := p.Decide(e)
		if err != nil {
			return err
		}
		var eta any
		if p.ETASeconds > 0 {
			eta = p.Now.Add(time.Duration(p.ETASeconds * float64(time.Second)))
		}
		var total any
		if p.TotalSteps > 0 {
			total = p.TotalSteps
		}
		var tps any
		if p.TokensPerSec > 0 {
			tps = p.TokensPerSec
		}
		_, err = x.exec(ctx, `UPDATE training_jobs SET status = ?, current_stage = ?, progress = ?, current_epoch = ?, current_step = ?,
			total_steps = COALESCE(?, total_steps), lease_expires_at = ?, current_cost = ?, estimated_completion_at = COALESCE(?, estimated_completion_at),
			tokens_per_second = COALESCE(?, tokens_per_second), updated_at = ? WHERE id = ?`,
			eff.Status, p.Stage, math.Min(100, math.Max(0, p.Progress)), p.Epoch, p.Step, total, p.Now.Add(p.Lease), eff.Cost, eta, tps, p.Now, p.JobID)
		stop = eff.Stop
		return err
	})
	return stop, err
}

// JobCheckpointSet records the latest uploaded checkpoint of the attempt.
func (s *Store) JobCheckpointSet(ctx context.Context, id string, attempt int, cp jobdoc.Checkpoint, at time.Time) error {
	return s.writeTx(ctx, func(x q) error {
		if _, err := s.execForUpdate(ctx, x, id, attempt); err != nil {
			return err
		}
		_, err := x.exec(ctx, "UPDATE training_jobs SET checkpoint = ?, checkpoint_at = ?, updated_at = ? WHERE id = ? AND status IN ('initializing', 'running')", docArg(cp), at, at, id)
		return err
	})
}

// attemptStep runs one step of an attempt in a transaction: it locks the
// attempt's row (attempt 0: whatever attempt is current), asks decide for
// the effects, and lets apply write them; apply may update e, which is
// returned.
func (s *Store) attemptStep(ctx context.Context, jobID string, attempt int, decide store.Decide, apply func(x q, e *store.ExecJob, eff store.Effects) error) (store.ExecJob, error) {
	var e store.ExecJob
	err := s.writeTx(ctx, func(x q) error {
		var err error
		if e, err = s.execForUpdate(ctx, x, jobID, attempt); err != nil {
			return err
		}
		eff, err := decide(e)
		if err != nil {
			return err
		}
		return apply(x, &e, eff)
	})
	return e, err
}

// JobRequeue puts a failed or abandoned attempt back in the queue.
func (s *Store) JobRequeue(ctx context.Context, p store.RequeueParams) (store.ExecJob, error) {
	return s.attemptStep(ctx, p.JobID, p.Attempt, p.Decide, func(x q, e *store.ExecJob, eff store.Effects) error {
		if _, err := x.exec(ctx, `UPDATE training_jobs SET status = ?, current_stage = ?, retry_count = retry_count + 1, run_seconds = ?,
			current_cost = ?, attempt_started_at = NULL, lease_expires_at = NULL, job_token_hash = NULL, agent_id = NULL, error_class = ?, error_message = ?,
			updated_at = ? WHERE id = ?`, eff.Status, eff.Stage, eff.RunSeconds, eff.Cost, nullIfEmpty(p.Class), nullIfEmpty(p.Message), p.Now, p.JobID); err != nil {
			return err
		}
		return s.effectsTx(ctx, x, p.JobID, e.Attempt, eff, p.Now)
	})
}

// JobFinish ends the job: status, final cost and its cost record, the model
// artifact on completion, a notification and an event, in one transaction.
func (s *Store) JobFinish(ctx context.Context, p store.FinishParams) (store.ExecJob, error) {
	return s.attemptStep(ctx, p.JobID, p.Attempt, p.Decide, func(x q, e *store.ExecJob, eff store.Effects) error {
		var artifactID any
		if p.Artifact != nil {
			a := p.Artifact
			id := a.ID
			if _, err := x.exec(ctx, `INSERT INTO model_artifacts (id, user_id, job_id, dataset_id, name, version, status, quality_metrics, training_summary,
				configuration, artifacts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '1.0.0', 'stored', ?, ?, ?, ?, ?, ?)`,
				id, e.UserID, e.ID, e.DatasetID, a.Name, docArg(a.QualityMetrics), docArg(a.TrainingSummary), docArg(a.Configuration), docArg(a.Artifacts),
				p.Now, p.Now); err != nil {
				return err
			}
			artifactID = id
		}
		var tps, overhead any
		if p.MeasuredTPS != nil {
			tps = *p.MeasuredTPS
		}
		if p.MeasuredOverhead != nil {
			overhead = *p.MeasuredOverhead
		}
		if _, err := x.exec(ctx, `UPDATE training_jobs SET status = ?, current_stage = ?, progress = ?, completed_at = ?, run_seconds = ?, current_cost = ?,
			final_cost = ?, error_class = ?, error_message = ?, error_stack = ?, job_token_hash = NULL, lease_expires_at = NULL, attempt_started_at = NULL,
			artifact_id = COALESCE(?, artifact_id), measured_tokens_per_second = COALESCE(?, measured_tokens_per_second),
			measured_overhead_seconds = COALESCE(?, measured_overhead_seconds), updated_at = ? WHERE id = ?`,
			eff.Status, eff.Stage, eff.Progress, p.Now, eff.RunSeconds, eff.Cost, eff.Cost, nullIfEmpty(p.ErrorClass), nullIfEmpty(p.ErrorMessage), nullIfEmpty(p.ErrorStack),
			artifactID, tps, overhead, p.Now, e.ID); err != nil {
			return err
		}
		if err := s.effectsTx(ctx, x, e.ID, e.Attempt, eff, p.Now); err != nil {
			return err
		}
		cost := eff.Cost
		e.Status, e.FinalCost = eff.Status, &cost
		if id, ok := artifactID.(string); ok {
			e.ArtifactID = &id
		}
		return nil
	})
}

// JobExpiredLeases lists active jobs whose lease ran out.
func (s *Store) JobExpiredLeases(ctx context.Context, now time.Time, limit int) ([]store.ExecJob, error) {
	var out []store.ExecJob
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+execCols+jobFrom+"WHERE j.status IN ('initializing', 'running') AND j.lease_expires_at < ? ORDER BY j.lease_expires_at LIMIT ?", now, limit)
		out, err = collect(rows, err, scanExec)
		return err
	})
	return out, err
}

// MetricsUpsert stores points idempotently on (job, step); later values
// fill in or replace earlier ones, never duplicate them.
func (s *Store) MetricsUpsert(ctx context.Context, jobID string, attempt int, points []store.MetricPoint, at time.Time) (int, error) {
	n := 0
	err := s.writeTx(ctx, func(x q) error {
		var latest *store.MetricPoint
		for i := range points {
			p := &points[i]
			ts := at.UTC()
			if p.Timestamp != nil {
				ts = p.Timestamp.UTC()
			}
			if _, err := x.exec(ctx, `INSERT INTO metrics_points (id, job_id, timestamp, epoch, step, training_loss, validation_loss, learning_rate,
				gradient_norm, throughput, gpu_utilization, tokens_per_second, gpu_memory_gb, mfu, attempt, train_mean_token_accuracy, valid_mean_token_accuracy)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (job_id, step) DO UPDATE SET timestamp = excluded.timestamp, epoch = excluded.epoch,
				training_loss = COALESCE(excluded.training_loss, metrics_points.training_loss),
				validation_loss = COALESCE(excluded.validation_loss, metrics_points.validation_loss),
				learning_rate = COALESCE(excluded.learning_rate, metrics_points.learning_rate),
				gradient_norm = COALESCE(excluded.gradient_norm, metrics_points.gradient_norm),
				throughput = COALESCE(excluded.throughput, metrics_points.throughput),
				gpu_utilization = COALESCE(excluded.gpu_utilization, metrics_points.gpu_utilization),
				tokens_per_second = COALESCE(excluded.tokens_per_second, metrics_points.tokens_per_second),
				gpu_memory_gb = COALESCE(excluded.gpu_memory_gb, metrics_points.gpu_memory_gb),
				mfu = COALESCE(excluded.mfu, metrics_points.mfu), attempt = excluded.attempt,
				train_mean_token_accuracy = COALESCE(excluded.train_mean_token_accuracy, metrics_points.train_mean_token_accuracy),
				valid_mean_token_accuracy = COALESCE(excluded.valid_mean_token_accuracy, metrics_points.valid_mean_token_accuracy)`,
				uuid.NewString(), jobID, ts, int(math.Floor(p.Epoch)), p.Step, p.TrainingLoss, p.ValidationLoss, p.LearningRate, p.GradientNorm,
				p.TokensPerSecond, p.GPUUtilization, p.TokensPerSecond, p.GPUMemoryGB, p.MFU, attempt, p.TrainMeanTokenAccuracy, p.ValidMeanTokenAccuracy); err != nil {
				return err
			}
			n++
			if latest == nil || p.Step >= latest.Step {
				latest = p
			}
		}
		if latest == nil {
			return nil
		}
		cur := jobdoc.Metrics{Step: latest.Step, TrainingLoss: latest.TrainingLoss, ValidationLoss: latest.ValidationLoss, LearningRate: latest.LearningRate,
			Throughput: latest.TokensPerSecond, GPUUtilization: latest.GPUUtilization, GPUMemoryGB: latest.GPUMemoryGB, MFU: latest.MFU, GradientNorm: latest.GradientNorm}
		var prev jobdoc.Metrics
		if err := x.queryRow(ctx, "SELECT current_metrics FROM training_jobs WHERE id = ?", jobID).Scan(doc[jobdoc.Metrics]{&prev}); err != nil {
			return err
		}
		_, err := x.exec(ctx, "UPDATE training_jobs SET current_metrics = ? WHERE id = ?", docArg(prev.Then(cur)), jobID)
		return err
	})
	return n, err
}

// MetricsList returns the points of one of the user's jobs after sinceStep.
func (s *Store) MetricsList(ctx context.Context, userID, jobID string, sinceStep, limit int) ([]store.MetricPoint, error) {
	out := []store.MetricPoint{}
	err := s.readTx(ctx, func(x q) error {
		if _, err := s.jobGet(ctx, x, userID, jobID); err != nil {
			return err
		}
		rows, err := x.query(ctx, `SELECT step, epoch, training_loss, validation_loss, learning_rate, gradient_norm, tokens_per_second, gpu_utilization,
			gpu_memory_gb, mfu, timestamp, train_mean_token_accuracy, valid_mean_token_accuracy FROM metrics_points WHERE job_id = ? AND step > ? ORDER BY step LIMIT ?`, jobID, sinceStep, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p store.MetricPoint
			var epoch int
			if err := rows.Scan(&p.Step, &epoch, &p.TrainingLoss, &p.ValidationLoss, &p.LearningRate, &p.GradientNorm, &p.TokensPerSecond,
				&p.GPUUtilization, &p.GPUMemoryGB, &p.MFU, nts{&p.Timestamp}, &p.TrainMeanTokenAccuracy, &p.ValidMeanTokenAccuracy); err != nil {
				return err
			}
			p.Epoch = float64(epoch)
			out = append(out, p)
		}
		return rows.Err()
	})
	return out, err
}

// JobEventsAdd appends log lines.
func (s *Store) JobEventsAdd(ctx context.Context, jobID string, attempt int, events []store.JobEvent, at time.Time) error {
	return s.writeTx(ctx, func(x q) error {
		for _, ev := range events {
			when := ev.CreatedAt
			if when.IsZero() {
				when = at
			}
			if err := s.event(ctx, x, jobID, attempt, ev.Level, ev.Stage, ev.Message, when); err != nil {
				return err
			}
		}
		return nil
	})
}

// JobEventsList returns the newest events of one of the user's jobs, oldest first.
func (s *Store) JobEventsList(ctx context.Context, userID, jobID string, limit int) ([]store.JobEvent, error) {
	out := []store.JobEvent{}
	err := s.readTx(ctx, func(x q) error {
		if _, err := s.jobGet(ctx, x, userID, jobID); err != nil {
			return err
		}
		rows, err := x.query(ctx, "SELECT id, attempt, level, stage, message, created_at FROM training_job_events WHERE job_id = ? ORDER BY created_at DESC, id LIMIT ?", jobID, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ev store.JobEvent
			if err := rows.Scan(&ev.ID, &ev.Attempt, &ev.Level, nstr{&ev.Stage}, &ev.Message, ts{&ev.CreatedAt}); err != nil {
				return err
			}
			out = append(out, ev)
		}
		return rows.Err()
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// CostRecordsForJob lists the cost records of one of the user's jobs.
func (s *Store) CostRecordsForJob(ctx context.Context, userID, jobID string) ([]store.CostRecord, error) {
	out := []store.CostRecord{}
	err := s.readTx(ctx, func(x q) error {
		rows, err := x.query(ctx, "SELECT "+costCols+" FROM cost_records WHERE user_id = ? AND job_id = ? ORDER BY recorded_at", userID, jobID)
		list, err := collect(rows, err, scanCost)
		if list != nil {
			out = list
		}
		return err
	})
	return out, err
}
