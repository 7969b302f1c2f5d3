package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/jobs"
	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

// billedJob runs a job through claim and completion with the given run time
// at $3.60/h (storetest.NewJob's price), so it bills hours × 3.60: the job
// lifecycle runs on its own clock, set to the claim and then to the end.
func billedJob(t *testing.T, s *testserver.Server, userID, datasetID string, hours float64) {
	t.Helper()
	st := s.App.Store
	ctx := context.Background()
	j := storetest.NewJob(t, st, userID, datasetID, "BILL-1")
	ag, _ := st.AgentCreate(store.AsSystem(ctx), "bill", "bill-"+j.ID, time.Now().UTC())
	end := time.Now().UTC()
	clock := end.Add(-time.Duration(hours * float64(time.Hour)))
	js := &jobs.Service{Store: st, Now: func() time.Time { return clock }}
	if _, ok, err := js.Claim(ctx, jobs.ClaimRequest{AgentID: ag.ID, GPUType: "BILL-1", GPUCount: 1, TokenHash: func(string, int) string { return "x" }, Lease: 10 * time.Hour}); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	e, err := st.JobExec(store.AsSystem(ctx), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	clock = end
	if _, err := js.Complete(ctx, e, jobs.Completion{Artifact: store.ArtifactCreateParams{Name: "billed"}}); err != nil {
		t.Fatal(err)
	}
}

func TestCostsAccrualBudgetAlertsAndReport(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := testserver.Start(t, e, testserver.Options{})
		c := s.SignUp(t, "costs@example.com")
		ds := uploadBytes(t, c, "small", "chat.jsonl", []byte(`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}`+"\n"))
		waitDataset(t, c, ds)
		c.MustJSON("PUT", "/api/settings/budget", map[string]any{"monthly_budget": 10}, 200, nil)
		ctx := context.Background()
		alerts := func() []string {
			var out struct {
				Notifications []struct{ Type, Title string }
			}
			c.MustJSON("GET", "/api/notifications?limit=100", nil, 200, &out)
			var got []string
			for _, n := range out.Notifications {
				if n.Type == "budget_alert" {
					got = append(got, n.Title)
				}
			}
			return got
		}
		billedJob(t, s, c.UserID, ds, 2) // $7.20: 72 %
		if err := s.App.Costs.CheckBudgets(ctx); err != nil || len(alerts()) != 0 {
			t.Fatalf("72%%: %v %v", err, alerts())
		}
		billedJob(t, s, c.UserID, ds, 0.5) // $9.00: 90 %
		for i := 0; i < 2; i++ {
			if err := s.App.Costs.CheckBudgets(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if a := alerts(); len(a) != 1 || a[0] != "Budget 80% used" {
			t.Fatalf("90%%: alerts %v", a)
		}
		billedJob(t, s, c.UserID, ds, 1) // $12.60: 126 %
		_ = s.App.Costs.CheckBudgets(ctx)
		_ = s.App.Costs.CheckBudgets(ctx)
		if a := alerts(); len(a) != 3 {
			t.Fatalf("126%%: alerts %v (want 80, 95, 100 once each)", a)
		}
		// Storage accrues once per simulated day (no sleeping: the day is a
		// parameter) and bills what was stored that day: the dataset was
		// uploaded today, so yesterday bills nothing, even when accrued later.
		day := time.Now().UTC().Truncate(24 * time.Hour)
		if n, err := s.App.Costs.AccrueStorage(ctx, day.AddDate(0, 0, -1)); err != nil || n != 0 {
			t.Fatalf("accrue the day before the upload: %d records, %v (want none)", n, err)
		}
		for i := 0; i < 2; i++ {
			if n, err := s.App.Costs.AccrueStorage(ctx, day); err != nil || (i == 0) != (n == 1) {
				t.Fatalf("accrue day 1 (pass %d): %d %v", i, n, err)
			}
		}
		if n, _ := s.App.Costs.AccrueStorage(ctx, day.AddDate(0, 0, 1)); n != 1 {
			t.Fatalf("accrue day 2: %d", n)
		}
		// The report window ends tomorrow so that both storage days are in it.
		window := "start=" + day.AddDate(0, 0, -5).Format("2006-01-02") + "&end=" + day.AddDate(0, 0, 1).Format("2006-01-02")
		var rep struct {
			Total   float64
			ByType  map[string]float64 `json:"by_type"`
			Daily   []struct{ Date string }
			Records []struct {
				CostType string          `json:"cost_type"`
				Details  json.RawMessage `json:"details"`
			}
			Budget struct {
				SpentThisMonth float64  `json:"spent_this_month"`
				Remaining      *float64 `json:"remaining"`
			}
		}
		c.MustJSON("GET", "/api/costs?"+window, nil, 200, &rep)
		storage := 0
		for _, r := range rep.Records {
			if r.CostType == "storage" {
				storage++
				if !strings.Contains(string(r.Details), `"gb"`) {
					t.Fatalf("storage details: %s", r.Details)
				}
			}
		}
		if len(rep.Daily) != 7 || storage != 2 || rep.ByType["compute"] < 12.59 || rep.Total < 12.59 || rep.Budget.Remaining == nil || *rep.Budget.Remaining != 0 {
			t.Fatalf("report: %+v", rep)
		}
		r := c.Do("GET", "/api/costs/export.csv?"+window, nil)
		lines := strings.Split(strings.TrimSpace(string(r.Body)), "\n")
		if r.Status != 200 || !strings.HasPrefix(lines[0], "recorded_at,billing_period,cost_type,amount_usd") || len(lines) != 6 {
			t.Fatalf("csv: %d %q", r.Status, r.Body)
		}
		if r := c.Do("GET", "/api/costs?period=12", nil); r.Status != 400 {
			t.Fatalf("bad period: %d", r.Status)
		}
		// Past 100 % with the hard stop, a paid job is refused.
		if r := c.Do("POST", "/api/jobs", jobReq(ds, mistral, "nvidia-h100-80gb", 1, nil)); r.Status != 409 {
			t.Fatalf("job past the budget: %d %s", r.Status, r.Body)
		}
	})
}
