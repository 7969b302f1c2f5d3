package inference

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// These tests drive the broker with a Go test double of the agent at the
// protocol boundary (fakeAgent calls Claim and Post as the HTTP handlers
// do). The real Python agent is exercised end to end in e2e/inference_test.go.

type fakeAgent struct {
	t   *testing.T
	b   *Broker
	id  string
	req ClaimRequest
}

func newFakeAgent(t *testing.T, b *Broker, id string, models ...string) *fakeAgent {
	a := &fakeAgent{t: t, b: b, id: id, req: ClaimRequest{Capabilities: Capabilities{GPUType: "CPU"}, BaseModels: models}}
	if c := a.claim(0); c != nil { // registers the agent as online
		t.Fatalf("claim on an empty queue returned %s", c.ID)
	}
	return a
}

func (a *fakeAgent) claim(wait time.Duration) *Call {
	return a.b.Claim(context.Background(), a.id, a.req, wait)
}

func (a *fakeAgent) post(id string, seq int, text string, done bool, reason string) (StreamAnswer, error) {
	p := StreamPost{Seq: &seq, Text: text, Done: done, FinishReason: reason}
	if done {
		p.Usage = &Usage{PromptTokens: 10, CompletionTokens: 3}
	}
	return a.b.Post(a.id, id, p)
}

type harness struct {
	b     *Broker
	ended chan Outcome
}

func newHarness(opts BrokerOptions) *harness {
	h := &harness{ended: make(chan Outcome, 64)}
	h.b = NewBroker(opts, time.Now, func(o Outcome) { h.ended <- o })
	return h
}

func (h *harness) outcome(t *testing.T) Outcome {
	t.Helper()
	select {
	case o := <-h.ended:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("no outcome recorded")
		return Outcome{}
	}
}

var fastOpts = BrokerOptions{QueueTimeout: time.Minute, Timeout: time.Minute, CancelGrace: time.Minute, AgentTTL: time.Minute, MaxWait: 5 * time.Second}

func submit(t *testing.T, b *Broker, user, id, model string) *Call {
	t.Helper()
	c := &Call{ID: id, UserID: user, BaseModel: model}
	if err := b.Submit(c); err != nil {
		t.Fatalf("submit %s: %v", id, err)
	}
	return c
}

func TestFairRoundRobinAcrossUsersFIFOWithin(t *testing.T) {
	h := newHarness(fastOpts)
	a := newFakeAgent(t, h.b, "agent-1", "m")
	for _, s := range []struct{ user, id string }{{"alice", "a1"}, {"alice", "a2"}, {"alice", "a3"}, {"bob", "b1"}, {"carol", "c1"}, {"carol", "c2"}} {
		submit(t, h.b, s.user, s.id, "m")
	}
	var got []string
	for c := a.claim(0); c != nil; c = a.claim(0) {
		got = append(got, c.ID)
	}
	if want := "a1 b1 c1 a2 c2 a3"; strings.Join(got, " ") != want {
		t.Fatalf("claim order %v, want %s", got, want)
	}
	// A user who joins later takes the next turn after the cursor, not the front.
	submit(t, h.b, "alice", "a4", "m")
	submit(t, h.b, "dave", "d1", "m")
	submit(t, h.b, "alice", "a5", "m")
	var later []string
	for c := a.claim(0); c != nil; c = a.claim(0) {
		later = append(later, c.ID)
	}
	if strings.Join(later, " ") != "a4 d1 a5" {
		t.Fatalf("later order %v", later)
	}
}

func TestAgentGetsOnlyModelsItServes(t *testing.T) {
	h := newHarness(fastOpts)
	small := newFakeAgent(t, h.b, "small", "small-model")
	if err := h.b.Submit(&Call{ID: "x", UserID: "u", BaseModel: "big-model"}); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("no agent serves big-model: want ErrNoAgent, got %v", err)
	}
	any := newFakeAgent(t, h.b, "any", "*")
	submit(t, h.b, "u", "s1", "small-model")
	submit(t, h.b, "u", "b1", "big-model")
	if c := small.claim(0); c == nil || c.ID != "s1" {
		t.Fatalf("small agent got %v", c)
	}
	if c := small.claim(0); c != nil {
		t.Fatalf("small agent got %s for a model it does not serve", c.ID)
	}
	if c := any.claim(0); c == nil || c.ID != "b1" {
		t.Fatalf(`"*" agent got %v`, c)
	}
}

func TestAgentOfflineAfterTTL(t *testing.T) {
	now := time.Now()
	b := NewBroker(fastOpts, func() time.Time { return now }, nil)
	a := &fakeAgent{t: t, b: b, id: "a", req: ClaimRequest{BaseModels: []string{"m"}}}
	a.claim(0)
	if !b.Online("m") {
		t.Fatal("agent that just polled is not online")
	}
	now = now.Add(fastOpts.AgentTTL + time.Second)
	if b.Online("m") {
		t.Fatal("agent silent for longer than the TTL is still online")
	}
}

func TestLongPollWakesOnSubmit(t *testing.T) {
	h := newHarness(fastOpts)
	a := newFakeAgent(t, h.b, "agent-1", "m")
	got := make(chan *Call)
	go func() { got <- a.claim(5 * time.Second) }()
	// The claim may not have started waiting yet; the wake channel it reads
	// under the lock covers both orders.
	submit(t, h.b, "u", "r1", "m")
	if c := <-got; c == nil || c.ID != "r1" {
		t.Fatalf("long poll got %v", c)
	}
}

func TestStreamSeqDedupeAndResult(t *testing.T) {
	h := newHarness(fastOpts)
	a := newFakeAgent(t, h.b, "agent-1", "m")
	c := submit(t, h.b, "u", "r1", "m")
	if a.claim(0) != c {
		t.Fatal("not claimed")
	}
	for _, p := range []struct {
		seq  int
		text string
		done bool
	}{{0, "Hel", false}, {0, "Hel", false}, {1, "lo", false}, {0, "Hel", false}, {2, "!", true}, {2, "!", true}} {
		ans, err := a.post(c.ID, p.seq, p.text, p.done, "stop")
		if p.seq == 2 && err != nil && apperr.Is(err, apperr.KindNotFound) {
			continue // the retried final post after the end: 404, the agent drops it
		}
		if err != nil || ans.Cancel {
			t.Fatalf("post %d: %v %+v", p.seq, err, ans)
		}
	}
	var text strings.Builder
	for {
		s, res, err := c.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		text.WriteString(s)
		if res != nil {
			if res.Err != nil || res.FinishReason != "stop" || res.Usage.CompletionTokens != 3 {
				t.Fatalf("result %+v", res)
			}
			break
		}
	}
	if text.String() != "Hello!" {
		t.Fatalf("text %q, want Hello! (a repeated seq must be ignored)", text.String())
	}
	if o := h.outcome(t); o.Status != "completed" || o.Usage.PromptTokens != 10 || o.FinishReason != "stop" || o.FirstText.IsZero() {
		t.Fatalf("outcome %+v", o)
	}
}

func TestStreamFromAnotherAgentIs404(t *testing.T) {
	h := newHarness(fastOpts)
	a := newFakeAgent(t, h.b, "agent-1", "m")
	other := newFakeAgent(t, h.b, "agent-2", "m")
	c := submit(t, h.b, "u", "r1", "m")
	a.claim(0)
	if _, err := other.post(c.ID, 0, "x", false, ""); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("another agent's post: want 404, got %v", err)
	}
	if _, err := a.post("unknown", 0, "x", false, ""); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("unknown request: want 404, got %v", err)
	}
}

func TestCallerGoneCancelsOnAgent(t *testing.T) {
	h := newHarness(fastOpts)
	a := newFakeAgent(t, h.b, "agent-1", "m")
	c := submit(t, h.b, "u", "r1", "m")
	a.claim(0)
	if ans, _ := a.post(c.ID, 0, "Hi", false, ""); ans.Cancel {
		t.Fatal("cancel before the caller left")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if s, _, _ := c.Next(ctx); s != "Hi" {
		t.Fatalf("text %q", s)
	}
	cancel() // the HTTP connection closed
	if _, _, err := c.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v", err)
	}
	ans, err := a.post(c.ID, 1, " there", false, "")
	if err != nil || !ans.Cancel {
		t.Fatalf("post after the caller left: %v %+v, want cancel", err, ans)
	}
	if _, err := a.post(c.ID, 2, "", true, "cancelled"); err != nil {
		t.Fatal(err)
	}
	if o := h.outcome(t); o.Status != "cancelled" || o.Usage.CompletionTokens != 3 {
		t.Fatalf("outcome %+v", o)
	}
}

func TestCancelWhileQueuedDropsRequest(t *testing.T) {
	h := newHarness(fastOpts)
	a := newFakeAgent(t, h.b, "agent-1", "m")
	c1 := submit(t, h.b, "u", "r1", "m")
	submit(t, h.b, "u", "r2", "m")
	h.b.Cancel(c1)
	if o := h.outcome(t); o.Status != "cancelled" || o.Call.ID != "r1" {
		t.Fatalf("outcome %+v", o)
	}
	if c := a.claim(0); c == nil || c.ID != "r2" {
		t.Fatalf("claim after dropping r1 got %v", c)
	}
	if h.b.Queued() != 0 {
		t.Fatalf("queue holds %d", h.b.Queued())
	}
}

func TestQueueTimeout(t *testing.T) {
	opts := fastOpts
	opts.QueueTimeout = 20 * time.Millisecond
	h := newHarness(opts)
	newFakeAgent(t, h.b, "busy", "m") // online but never claims again
	c := submit(t, h.b, "u", "r1", "m")
	_, res, err := c.Next(context.Background())
	if err != nil || res == nil || res.Err == nil {
		t.Fatalf("want a queue timeout result, got %v %+v", err, res)
	}
	if ae, _ := apperr.As(res.Err); ae == nil || ae.Kind != apperr.KindUnavailable || ae.Code != "queue_timeout" || !strings.Contains(ae.Message, "busy") {
		t.Fatalf("error %v", res.Err)
	}
	if o := h.outcome(t); o.Status != "timeout" {
		t.Fatalf("outcome %+v", o)
	}
	if h.b.Queued() != 0 {
		t.Fatal("timed-out request still queued")
	}
}

func TestOverallTimeoutCancelsAgentAndCloses(t *testing.T) {
	opts := fastOpts
	opts.Timeout, opts.CancelGrace = 30*time.Millisecond, 30*time.Millisecond
	h := newHarness(opts)
	a := newFakeAgent(t, h.b, "slow", "m")
	c := submit(t, h.b, "u", "r1", "m")
	a.claim(0)
	_, res, err := c.Next(context.Background())
	if err != nil || res == nil {
		t.Fatalf("Next: %v %+v", err, res)
	}
	if ae, _ := apperr.As(res.Err); ae == nil || ae.Code != "timeout" {
		t.Fatalf("want a timeout error, got %v", res.Err)
	}
	// The agent that never posted is closed out after the grace.
	if o := h.outcome(t); o.Status != "timeout" || o.Error == "" {
		t.Fatalf("outcome %+v", o)
	}
	if _, err := a.post(c.ID, 0, "late", false, ""); !apperr.Is(err, apperr.KindNotFound) {
		t.Fatalf("post after close: want 404, got %v", err)
	}
}

func TestAgentErrorReachesCaller(t *testing.T) {
	h := newHarness(fastOpts)
	a := newFakeAgent(t, h.b, "agent-1", "m")
	c := submit(t, h.b, "u", "r1", "m")
	a.claim(0)
	seq := 0
	if _, err := h.b.Post(a.id, c.ID, StreamPost{Seq: &seq, Done: true, Error: &StreamError{Class: "oom", Message: "out of memory"}}); err != nil {
		t.Fatal(err)
	}
	_, res, _ := c.Next(context.Background())
	if ae, _ := apperr.As(res.Err); ae == nil || ae.Kind != apperr.KindUnavailable || !strings.Contains(ae.Message, "out of memory") {
		t.Fatalf("result %+v", res)
	}
	if o := h.outcome(t); o.Status != "failed" {
		t.Fatalf("outcome %+v", o)
	}
}

func TestWarmAgentPreferred(t *testing.T) {
	h := newHarness(fastOpts)
	cold := newFakeAgent(t, h.b, "cold", "m")
	warm := &fakeAgent{t: t, b: h.b, id: "warm", req: ClaimRequest{BaseModels: []string{"m"}, Loaded: []string{"m"}}}
	got := make(chan *Call)
	inPoll := make(chan struct{})
	var once sync.Once
	h.b.polling = func(id string) {
		if id == "warm" {
			once.Do(func() { close(inPoll) })
		}
	}
	go func() { got <- warm.claim(5 * time.Second) }()
	<-inPoll // the warm agent is in its long poll
	submit(t, h.b, "u", "r1", "m")
	if c := cold.claim(0); c != nil {
		t.Fatalf("the cold agent took %s while a warm one waited", c.ID)
	}
	if c := <-got; c == nil || c.ID != "r1" {
		t.Fatalf("warm agent got %v", c)
	}
	// With no warm agent waiting, the cold one serves.
	submit(t, h.b, "u", "r2", "m")
	if c := cold.claim(0); c == nil || c.ID != "r2" {
		t.Fatalf("cold agent got %v", c)
	}
}

func TestPerUserLimit(t *testing.T) {
	opts := fastOpts
	opts.MaxPerUser = 2
	h := newHarness(opts)
	newFakeAgent(t, h.b, "a", "m")
	c1 := submit(t, h.b, "u", "r1", "m")
	submit(t, h.b, "u", "r2", "m")
	if err := h.b.Submit(&Call{ID: "r3", UserID: "u", BaseModel: "m"}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third request: want ErrTooMany, got %v", err)
	}
	submit(t, h.b, "other", "o1", "m") // other users are not held back
	h.b.Cancel(c1)
	submit(t, h.b, "u", "r3", "m") // a slot came free
}

func TestGeneratedTextIsCleaned(t *testing.T) {
	h := newHarness(fastOpts)
	svc := &Service{Broker: h.b}
	a := newFakeAgent(t, h.b, "agent-1", "m")
	c := submit(t, h.b, "u", "r1", "m")
	a.claim(0)
	seq := 0
	if _, err := svc.Post(store.Agent{ID: a.id}, c.ID, StreamPost{Seq: &seq, Text: "a\x00b\x07c\n\td\xff"}); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := c.Next(context.Background()); s != "abc\n\td\uFFFD" {
		t.Fatalf("relayed %q", s)
	}
}
