// Package protocol is a load benchmark of the agent protocol (run.sh):
// 100 concurrent jobs post a metrics batch and a heartbeat every 2 s while
// 200 clients poll job pages every 5 s, for 60 s, on SQLite and PostgreSQL,
// all on loopback. It reports p50/p99 latency and points stored per second,
// and checks that no point was lost or duplicated.
package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/store"
	"github.com/brightrun/brightrun/internal/store/storetest"
	"github.com/brightrun/brightrun/internal/store/testdb"
	"github.com/brightrun/brightrun/internal/testserver"
)

const (
	jobs        = 100
	pollers     = 200
	batchEvery  = 2 * time.Second
	pollEvery   = 5 * time.Second
	pointsBatch = 10
)

type recorder struct {
	mu   sync.Mutex
	lat  map[string][]time.Duration
	errs atomic.Int64
}

func (r *recorder) add(kind string, d time.Duration) {
	r.mu.Lock()
	r.lat[kind] = append(r.lat[kind], d)
	r.mu.Unlock()
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[int(float64(len(ds)-1)*p)]
}

func post(client *http.Client, url, token string, body any) (int, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

func TestProtocolLoad(t *testing.T) {
	if os.Getenv("BRIGHTRUN_BENCH") != "1" {
		t.Skip("benchmark: run bench/protocol/run.sh (BRIGHTRUN_BENCH=1)")
	}
	dur := 60 * time.Second
	if v := os.Getenv("BRIGHTRUN_BENCH_SECONDS"); v != "" {
		n, _ := strconv.Atoi(v)
		dur = time.Duration(n) * time.Second
	}
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) { run(t, e, dur) })
}

func run(t *testing.T, e testdb.Engine, dur time.Duration) {
	s := testserver.Start(t, e, testserver.Options{})
	c := s.SignUp(t, "load@example.com")
	var tok struct{ Token string }
	c.MustJSON("POST", "/api/tokens", map[string]string{"name": "load"}, 201, &tok)
	st := s.App.Store
	d := storetest.NewDataset(t, st, c.UserID, "load")
	agentTok, _, err := s.App.Agents.CreateAgent(context.Background(), "load-agent")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = storetest.NewJob(t, st, c.UserID, d.ID, "CPU").ID
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 400}}
	// Claim every job through the protocol to get real job tokens.
	tokens := map[string]string{}
	for range ids {
		b, _ := json.Marshal(map[string]any{"capabilities": map[string]any{"gpu_type": "CPU"}, "wait_seconds": 0})
		req, _ := http.NewRequest("POST", s.URL+"/api/agent/claim", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+agentTok)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Data struct {
				Job struct{ ID, Token string }
			}
		}
		json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		tokens[out.Data.Job.ID] = out.Data.Job.Token
	}
	if len(tokens) != jobs {
		t.Fatalf("claimed %d jobs, want %d", len(tokens), jobs)
	}
	rec := &recorder{lat: map[string][]time.Duration{}}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	var posted atomic.Int64
	sent := make(map[string]*atomic.Int64, jobs)
	for _, id := range ids {
		sent[id] = &atomic.Int64{}
	}
	start := time.Now()
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := tokens[id]
			time.Sleep(time.Duration(i) * batchEvery / jobs) // spread the load
			tick := time.NewTicker(batchEvery)
			defer tick.Stop()
			step := 0
			for {
				pts := make([]map[string]any, pointsBatch)
				for k := range pts {
					step++
					pts[k] = map[string]any{"step": step, "epoch": 1, "training_loss": 2.0 / float64(step), "learning_rate": 1e-4, "tokens_per_second": 1000}
				}
				t0 := time.Now()
				code, err := post(client, s.URL+"/api/agent/jobs/"+id+"/metrics", token, map[string]any{"points": pts})
				rec.add("metrics", time.Since(t0))
				if err != nil || code != 200 {
					rec.errs.Add(1)
				} else {
					posted.Add(pointsBatch)
					sent[id].Store(int64(step))
				}
				t0 = time.Now()
				code, err = post(client, s.URL+"/api/agent/jobs/"+id+"/heartbeat", token, map[string]any{"stage": "training", "progress": 10, "step": step})
				rec.add("heartbeat", time.Since(t0))
				if err != nil || code != 200 {
					rec.errs.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	for p := 0; p < pollers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := ids[p%jobs]
			time.Sleep(time.Duration(p) * pollEvery / pollers)
			tick := time.NewTicker(pollEvery)
			defer tick.Stop()
			since := -1
			for {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/jobs/%s?since_step=%d", s.URL, id, since), nil)
				req.Header.Set("Authorization", "Bearer "+tok.Token)
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					rec.errs.Add(1)
				} else {
					var out struct {
						Data struct {
							Metrics []struct{ Step int }
						}
					}
					json.NewDecoder(res.Body).Decode(&out)
					res.Body.Close()
					rec.add("poll", time.Since(t0))
					if res.StatusCode != 200 {
						rec.errs.Add(1)
					}
					if n := len(out.Data.Metrics); n > 0 {
						since = out.Data.Metrics[n-1].Step
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// No lost or duplicated points: every job has exactly the steps it sent.
	stored := 0
	for _, id := range ids {
		pts, err := st.MetricsList(store.WithUser(context.Background(), c.UserID), c.UserID, id, -1, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(pts)) != sent[id].Load() {
			t.Errorf("job %s: %d points stored, %d sent", id, len(pts), sent[id].Load())
		}
		stored += len(pts)
	}
	all := append(append(append([]time.Duration{}, rec.lat["metrics"]...), rec.lat["heartbeat"]...), rec.lat["poll"]...)
	t.Logf("RESULT %s: %d requests in %.0f s, errors %d; p50/p99 metrics %v/%v, heartbeat %v/%v, poll %v/%v, all %v/%v; %d points stored (%.0f/s), lost or duplicated 0",
		e.Name, len(all), elapsed.Seconds(), rec.errs.Load(),
		pct(rec.lat["metrics"], .5), pct(rec.lat["metrics"], .99), pct(rec.lat["heartbeat"], .5), pct(rec.lat["heartbeat"], .99),
		pct(rec.lat["poll"], .5), pct(rec.lat["poll"], .99), pct(all, .5), pct(all, .99), stored, float64(posted.Load())/elapsed.Seconds())
	if rec.errs.Load() > 0 {
		t.Errorf("%d request errors", rec.errs.Load())
	}
}
