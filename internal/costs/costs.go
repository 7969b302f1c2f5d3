// Package costs is the cost domain: daily storage accrual, budget alerts at
// 80/95/100 %, the costs API with CSV export, and the costs page.
package costs

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/costdoc"
	"github.com/brightrun/brightrun/internal/notifydoc"
	"github.com/brightrun/brightrun/internal/store"
)

// Service implements the use cases. Now is injectable: tests simulate days.
type Service struct {
	Store store.Store
	Log   *slog.Logger
	Now   func() time.Time
	// StorageGBMonth is the storage price in dollars per GB-month.
	StorageGBMonth float64
}

// Thresholds are the budget shares that notify, once each per month.
var Thresholds = []int{80, 95, 100}

func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// AccrueStorage records the storage cost of the day d (GB stored × price ÷
// days in the month) for every user, once per user and day. A day bills
// what was stored that day: every object that existed at some point during
// it (created before the day's end, not deleted before its start), whenever
// the accrual runs.
func (s *Service) AccrueStorage(ctx context.Context, d time.Time) (int, error) {
	sys := store.AsSystem(ctx)
	d = day(d)
	usage, err := s.Store.StorageUsageDuring(sys, d, d.AddDate(0, 0, 1))
	if err != nil {
		return 0, err
	}
	days := float64(monthStart(d).AddDate(0, 1, 0).Sub(monthStart(d)).Hours() / 24)
	n := 0
	for _, u := range usage {
		gb := float64(u.DatasetBytes+u.ArtifactBytes) / 1e9
		amount := gb * s.StorageGBMonth / days
		ok, err := s.Store.CostStorageAccrue(sys, u.UserID, d, amount, costdoc.Storage{Day: d.Format("2006-01-02"), GB: math.Round(gb*1e6) / 1e6,
			DatasetBytes: u.DatasetBytes, ArtifactBytes: u.ArtifactBytes, PricePerGBMon: s.StorageGBMonth, AmountExact: amount})
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// CheckBudgets notifies users whose month-to-date spend crossed 80, 95 or
// 100 % of their budget, once per threshold and month.
func (s *Service) CheckBudgets(ctx context.Context) error {
	sys := store.AsSystem(ctx)
	users, err := s.Store.BudgetUsers(sys)
	if err != nil {
		return err
	}
	month := monthStart(s.Now())
	for _, u := range users {
		if u.MonthlyBudget == nil || *u.MonthlyBudget <= 0 {
			continue
		}
		spent, err := s.Store.CostSpent(sys, u.UserID, month)
		if err != nil {
			return err
		}
		pct := 100 * spent / *u.MonthlyBudget
		for _, t := range Thresholds {
			if pct < float64(t) {
				continue
			}
			first, err := s.Store.BudgetAlertRecord(sys, u.UserID, month, t, s.Now().UTC())
			if err != nil {
				return err
			}
			if !first {
				continue
			}
			prio := map[int]string{80: "medium", 95: "high", 100: "critical"}[t]
			msg := fmt.Sprintf("You have spent $%.2f of your $%.2f budget for %s (%.0f%%).", spent, *u.MonthlyBudget, month.Format("January 2006"), pct)
			if t == 100 && u.BudgetHardStop {
				msg += " New jobs whose estimate exceeds what is left are refused until next month or a higher budget."
			}
			if _, err := s.Store.NotificationCreate(sys, store.NotificationCreateParams{At: s.Now().UTC(), UserID: u.UserID, Type: "budget_alert", Priority: prio,
				Title: fmt.Sprintf("Budget %d%% used", t), Message: msg, ActionURL: "/costs", Metadata: notifydoc.BudgetAlert(t, spent, *u.MonthlyBudget)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Worker accrues yesterday's storage and checks budgets every interval.
func (s *Service) Worker(every time.Duration) func(ctx context.Context) {
	return func(ctx context.Context) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if _, err := s.AccrueStorage(ctx, s.Now().AddDate(0, 0, -1)); err != nil && ctx.Err() == nil {
				s.Log.Warn("storage accrual", "err", err)
			}
			if err := s.CheckBudgets(ctx); err != nil && ctx.Err() == nil {
				s.Log.Warn("budget check", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
}

// Day is one day of the daily series.
type Day struct {
	Date      string  `json:"date"`
	Compute   float64 `json:"compute"`
	Storage   float64 `json:"storage"`
	Inference float64 `json:"inference"`
	Total     float64 `json:"total"`
}

// Report is GET /api/costs.
type Report struct {
	Start   string             `json:"start"`
	End     string             `json:"end"`
	Total   float64            `json:"total"`
	ByType  map[string]float64 `json:"by_type"`
	Daily   []Day              `json:"daily"`
	Records []store.CostRecord `json:"records"`
	Budget  BudgetView         `json:"budget"`
}

// BudgetView is the month's budget position.
type BudgetView struct {
	MonthlyBudget     *float64 `json:"monthly_budget"`
	HardStop          bool     `json:"hard_stop"`
	SpentThisMonth    float64  `json:"spent_this_month"`
	Remaining         *float64 `json:"remaining"`
	ProjectedMonthEnd float64  `json:"projected_month_end"`
}

// Range resolves ?period=7|30|90 or ?start=YYYY-MM-DD&end=YYYY-MM-DD (end inclusive).
func (s *Service) Range(period, start, end string) (time.Time, time.Time, error) {
	today := day(s.Now())
	if start != "" || end != "" {
		a, err1 := time.Parse("2006-01-02", start)
		b, err2 := time.Parse("2006-01-02", end)
		if err1 != nil || err2 != nil || b.Before(a) || b.Sub(a) > 366*24*time.Hour {
			return time.Time{}, time.Time{}, apperr.Validation("validation failed", map[string]string{"start": "give start and end as YYYY-MM-DD, end on or after start, at most a year apart"})
		}
		return a, b.AddDate(0, 0, 1), nil
	}
	days := 30
	switch period {
	case "", "30":
	case "7":
		days = 7
	case "90":
		days = 90
	default:
		return time.Time{}, time.Time{}, apperr.Validation("validation failed", map[string]string{"period": "use 7, 30 or 90 (days), or start and end"})
	}
	return today.AddDate(0, 0, -days+1), today.AddDate(0, 0, 1), nil
}

// Report builds the costs report for [from, to).
func (s *Service) Report(ctx context.Context, userID string, from, to time.Time) (Report, error) {
	recs, err := s.Store.CostList(ctx, userID, from, to)
	if err != nil {
		return Report{}, err
	}
	if recs == nil {
		recs = []store.CostRecord{}
	}
	r := Report{Start: from.Format("2006-01-02"), End: to.AddDate(0, 0, -1).Format("2006-01-02"), ByType: map[string]float64{"compute": 0, "storage": 0, "inference": 0}, Records: recs}
	byDay := map[string]*Day{}
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		k := d.Format("2006-01-02")
		byDay[k] = &Day{Date: k}
	}
	for _, c := range recs {
		r.Total += c.Amount
		r.ByType[c.CostType] += c.Amount
		if d := byDay[c.RecordedAt.UTC().Format("2006-01-02")]; d != nil {
			switch c.CostType {
			case "storage":
				d.Storage += c.Amount
			case "inference":
				d.Inference += c.Amount
			default:
				d.Compute += c.Amount
			}
			d.Total += c.Amount
		}
	}
	for _, d := range byDay {
		r.Daily = append(r.Daily, *d)
	}
	sort.Slice(r.Daily, func(i, j int) bool { return r.Daily[i].Date < r.Daily[j].Date })
	r.Budget, err = s.budget(ctx, userID)
	return r, err
}

func (s *Service) budget(ctx context.Context, userID string) (BudgetView, error) {
	st, err := s.Store.UserSettingsGet(ctx, userID)
	if err != nil {
		return BudgetView{}, err
	}
	now := s.Now().UTC()
	ms := monthStart(now)
	spent, err := s.Store.CostSpent(ctx, userID, ms)
	if err != nil {
		return BudgetView{}, err
	}
	b := BudgetView{MonthlyBudget: st.MonthlyBudget, HardStop: st.BudgetHardStop, SpentThisMonth: spent}
	elapsed := now.Sub(ms).Hours() / 24
	total := ms.AddDate(0, 1, 0).Sub(ms).Hours() / 24
	if elapsed > 0 {
		b.ProjectedMonthEnd = math.Round(spent/elapsed*total*100) / 100
	}
	if st.MonthlyBudget != nil {
		rem := math.Max(0, *st.MonthlyBudget-spent)
		b.Remaining = &rem
	}
	return b, nil
}
