package inference

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/brightrun/brightrun/internal/apperr"
)

// BrokerOptions tune the broker.
type BrokerOptions struct {
	QueueTimeout time.Duration // a request no agent claimed within this fails
	Timeout      time.Duration // a request not finished within this fails (and is cancelled on the agent)
	CancelGrace  time.Duration // how long a cancelled request waits for the agent's last post before it is closed
	AgentTTL     time.Duration // a claim poll marks the agent online this long
	MaxWait      time.Duration // longest claim long-poll
	MaxPerUser   int           // requests one user may have queued or running at once
}

// DefaultBrokerOptions are the production settings.
var DefaultBrokerOptions = BrokerOptions{QueueTimeout: 60 * time.Second, Timeout: 300 * time.Second, CancelGrace: 30 * time.Second,
	AgentTTL: 60 * time.Second, MaxWait: 25 * time.Second, MaxPerUser: 16}

// ErrNoAgent: no online agent serves the request's base model.
var ErrNoAgent = errors.New("no agent serving the model is online")

// ErrTooMany: the user already has MaxPerUser requests in the broker.
var ErrTooMany = errors.New("too many requests in flight")

// Call states.
const (
	stateQueued = iota
	stateClaimed
	stateEnded
)

// Call is one request in the broker. The caller reads it with Next; the
// agent that claimed it writes it with Broker.Post.
type Call struct {
	ID        string
	UserID    string
	BaseModel string
	Work      Work // what the agent gets (the service fills adapter URLs at claim time)
	Meta      any  // the service's own data, handed back in Outcome

	b *Broker
	// guarded by b.mu
	state     int
	agentID   string
	gpuType   string
	lastSeq   int
	cancelled bool
	why       string // "cancelled" or "timeout": why the broker cancelled it
	pending   strings.Builder
	result    *Result
	created   time.Time
	claimed   time.Time
	firstText time.Time
	timers    []*time.Timer
	notify    chan struct{}
}

// Result ends a call for its caller: a finish reason with usage, or an error.
type Result struct {
	FinishReason string
	Usage        Usage
	Timings      *Timings
	Err          error
}

// Outcome is a call's final record, handed to the broker's OnEnd hook once.
type Outcome struct {
	Call                        *Call
	GPUType                     string
	Status                      string // completed | cancelled | failed | timeout
	FinishReason                string
	Error                       string
	Usage                       Usage
	Created, Claimed, FirstText time.Time
	Ended                       time.Time
	AgentTimings                *Timings
}

type agentState struct {
	id      string
	gpuType string
	models  []string
	loaded  []string
	seen    time.Time
	waiting bool // in a claim long-poll now
}

func (a *agentState) serves(model string) bool {
	return slices.Contains(a.models, "*") || slices.Contains(a.models, model)
}

// Broker queues calls fairly (round-robin across users, FIFO within a
// user), hands them to polling agents and relays their output. It is
// in-process state: see the package comment for several replicas.
type Broker struct {
	opts  BrokerOptions
	now   func() time.Time
	onEnd func(Outcome)

	mu     sync.Mutex
	agents map[string]*agentState
	users  []string           // users with queued calls, in round-robin order
	queues map[string][]*Call // per user, oldest first
	next   int                // round-robin cursor into users
	calls  map[string]*Call   // queued and claimed calls
	wake   chan struct{}      // closed when a call is queued

	// polling, when set (tests), is called each time an agent enters its
	// long-poll wait, so a test can wait on that instead of sleeping.
	polling func(agentID string)
}

// NewBroker builds a broker; onEnd (may be nil) runs once per call, outside
// the broker's lock, when the call is over for good.
func NewBroker(opts BrokerOptions, now func() time.Time, onEnd func(Outcome)) *Broker {
	return &Broker{opts: opts, now: now, onEnd: onEnd, agents: map[string]*agentState{}, queues: map[string][]*Call{},
		calls: map[string]*Call{}, wake: make(chan struct{})}
}

// Online reports whether an agent that polled within AgentTTL serves model.
func (b *Broker) Online(model string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.onlineLocked(model)
}

func (b *Broker) onlineLocked(model string) bool {
	now := b.now()
	for _, a := range b.agents {
		if now.Sub(a.seen) < b.opts.AgentTTL && a.serves(model) {
			return true
		}
	}
	return false
}

// Submit queues c, or fails at once with ErrNoAgent.
func (b *Broker) Submit(c *Call) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.onlineLocked(c.BaseModel) {
		return ErrNoAgent
	}
	if b.opts.MaxPerUser > 0 {
		n := 0
		for _, x := range b.calls {
			if x.UserID == c.UserID {
				n++
			}
		}
		if n >= b.opts.MaxPerUser {
			return ErrTooMany
		}
	}
	c.b, c.state, c.lastSeq, c.created, c.notify = b, stateQueued, -1, b.now(), make(chan struct{}, 1)
	b.calls[c.ID] = c
	if len(b.queues[c.UserID]) == 0 {
		b.users = append(b.users, c.UserID)
	}
	b.queues[c.UserID] = append(b.queues[c.UserID], c)
	c.timers = append(c.timers,
		time.AfterFunc(b.opts.QueueTimeout, func() { b.expire(c, true) }),
		time.AfterFunc(b.opts.Timeout, func() { b.expire(c, false) }))
	close(b.wake)
	b.wake = make(chan struct{})
	return nil
}

// Queued is how many calls wait for an agent.
func (b *Broker) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, q := range b.queues {
		n += len(q)
	}
	return n
}

// Claim registers the polling agent and waits up to wait (capped at
// MaxWait) for a call it can serve; nil when none came.
func (b *Broker) Claim(ctx context.Context, agentID string, req ClaimRequest, wait time.Duration) *Call {
	wait = min(max(wait, 0), b.opts.MaxWait)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		b.mu.Lock()
		a := b.agents[agentID]
		if a == nil {
			a = &agentState{id: agentID}
			b.agents[agentID] = a
		}
		a.gpuType, a.models, a.loaded, a.seen = req.Capabilities.GPUType, req.BaseModels, req.Loaded, b.now()
		c := b.takeLocked(a)
		if c != nil && ctx.Err() != nil { // the poll is gone: nobody would get it
			b.requeueLocked(c)
			c = nil
		}
		if c != nil {
			c.state, c.agentID, c.gpuType, c.claimed = stateClaimed, agentID, a.gpuType, b.now()
		}
		wake := b.wake
		a.waiting = c == nil
		b.mu.Unlock()
		if c != nil {
			return c
		}
		defer func() { b.mu.Lock(); a.waiting = false; b.mu.Unlock() }()
		if b.polling != nil {
			b.polling(agentID)
		}
		select {
		case <-wake:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// takeLocked removes and returns the next call agent a serves: users in
// round-robin order from the cursor, the oldest servable call of a user.
func (b *Broker) takeLocked(a *agentState) *Call {
	n := len(b.users)
	for i := range n {
		idx := (b.next + i) % n
		u := b.users[idx]
		for j, c := range b.queues[u] {
			if !a.serves(c.BaseModel) || b.warmElsewhereLocked(a, c.BaseModel) {
				continue
			}
			b.removeLocked(c, idx, j)
			return c
		}
	}
	return nil
}

// warmElsewhereLocked: a has not loaded model but another agent that has is
// waiting for work now, so that agent (woken by the same signal) should take
// it rather than a cold start here.
func (b *Broker) warmElsewhereLocked(a *agentState, model string) bool {
	if slices.Contains(a.loaded, model) {
		return false
	}
	for _, o := range b.agents {
		if o != a && o.waiting && slices.Contains(o.loaded, model) && b.now().Sub(o.seen) < b.opts.AgentTTL {
			return true
		}
	}
	return false
}

// removeLocked takes the j-th call of users[idx] off the queue and moves
// the cursor to the user after it.
func (b *Broker) removeLocked(c *Call, idx, j int) {
	u := c.UserID
	b.queues[u] = slices.Delete(b.queues[u], j, j+1)
	if len(b.queues[u]) == 0 {
		delete(b.queues, u)
		b.users = slices.Delete(b.users, idx, idx+1)
		b.next = idx // the next user slid into idx
	} else {
		b.next = idx + 1
	}
	if len(b.users) > 0 {
		b.next %= len(b.users)
	} else {
		b.next = 0
	}
}

// dequeueLocked removes a queued call wherever it is; the rotation stays
// on the user it pointed at.
func (b *Broker) dequeueLocked(c *Call) {
	idx := slices.Index(b.users, c.UserID)
	if idx < 0 {
		return
	}
	j := slices.Index(b.queues[c.UserID], c)
	if j < 0 {
		return
	}
	cur := b.users[b.next]
	b.removeLocked(c, idx, j)
	if k := slices.Index(b.users, cur); k >= 0 {
		b.next = k
	}
}

// requeueLocked puts a call back at the head of its user's queue.
func (b *Broker) requeueLocked(c *Call) {
	if len(b.queues[c.UserID]) == 0 {
		b.users = append(b.users, c.UserID)
	}
	b.queues[c.UserID] = append([]*Call{c}, b.queues[c.UserID]...)
}

// Post applies an agent's stream post: text for the caller, and at done the
// end of the call. It answers whether the agent should stop. A call that is
// unknown, over, or claimed by another agent is a 404.
func (b *Broker) Post(agentID, id string, p StreamPost) (StreamAnswer, error) {
	b.mu.Lock()
	c := b.calls[id]
	if c == nil || c.state != stateClaimed || c.agentID != agentID {
		b.mu.Unlock()
		return StreamAnswer{}, apperr.NotFound("inference request")
	}
	if a := b.agents[agentID]; a != nil {
		a.seen = b.now() // an agent busy generating is still online
	}
	if *p.Seq <= c.lastSeq { // a retried post: already applied
		ans := StreamAnswer{Cancel: c.cancelled}
		b.mu.Unlock()
		return ans, nil
	}
	c.lastSeq = *p.Seq
	if p.Text != "" {
		if c.firstText.IsZero() {
			c.firstText = b.now()
		}
		c.pending.WriteString(p.Text)
		c.signal()
	}
	ans := StreamAnswer{Cancel: c.cancelled}
	if !p.Done {
		b.mu.Unlock()
		return ans, nil
	}
	out, res := b.finishLocked(c, p)
	b.mu.Unlock()
	// Usage is recorded before the caller learns the request is over, so a
	// finished answer always has its usage row.
	if b.onEnd != nil {
		b.onEnd(*out)
	}
	b.mu.Lock()
	b.resolveLocked(c, res)
	b.mu.Unlock()
	return ans, nil
}

// finishLocked ends c with the agent's last post and returns its outcome
// and the caller's result.
func (b *Broker) finishLocked(c *Call, p StreamPost) (*Outcome, *Result) {
	res := &Result{FinishReason: p.FinishReason, Timings: p.Timings}
	if p.Usage != nil {
		res.Usage = *p.Usage
	}
	status := "completed"
	msg := ""
	switch {
	case p.Error != nil:
		status, msg = "failed", p.Error.Message
		res.Err = agentError(p.Error)
	case c.cancelled || p.FinishReason == "cancelled":
		status = "cancelled"
		if c.why == "timeout" {
			status = "timeout"
		}
		res.FinishReason = "cancelled"
	}
	out := b.endLocked(c, status, msg)
	out.Usage, out.FinishReason, out.AgentTimings = res.Usage, res.FinishReason, p.Timings
	return out, res
}

func agentError(e *StreamError) error {
	switch e.Class {
	case "config":
		return apperr.BadRequest("the agent refused the request: %s", e.Message)
	case "oom":
		return apperr.Unavailable("the agent ran out of memory generating the answer: %s (try fewer max_tokens or a shorter conversation)", e.Message)
	}
	return apperr.Unavailable("generation failed on the agent: %s", e.Message)
}

// resolveLocked gives the caller its result, once.
func (b *Broker) resolveLocked(c *Call, r *Result) {
	if c.result == nil {
		c.result = r
		c.signal()
	}
}

// endLocked removes c for good and returns its outcome for OnEnd.
func (b *Broker) endLocked(c *Call, status, msg string) *Outcome {
	c.state = stateEnded
	delete(b.calls, c.ID)
	for _, t := range c.timers {
		t.Stop()
	}
	return &Outcome{Call: c, GPUType: c.gpuType, Status: status, Error: msg, Created: c.created, Claimed: c.claimed, FirstText: c.firstText, Ended: b.now()}
}

func (c *Call) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// expire handles the queue timeout (queued only) and the overall timeout.
func (b *Broker) expire(c *Call, queueOnly bool) {
	b.mu.Lock()
	var out *Outcome
	switch {
	case c.state == stateQueued:
		b.dequeueLocked(c)
		msg := "no agent picked up the request within " + b.opts.QueueTimeout.String() + ": every agent serving " + c.BaseModel + " is busy; try again shortly"
		b.resolveLocked(c, &Result{Err: apperr.Unavailable("%s", msg).WithCode("queue_timeout")})
		out = b.endLocked(c, "timeout", msg)
	case c.state == stateClaimed && !queueOnly:
		msg := "the request did not finish within " + b.opts.Timeout.String()
		b.resolveLocked(c, &Result{Err: apperr.Unavailable("%s; ask for fewer max_tokens", msg).WithCode("timeout")})
		c.why = "timeout"
		b.cancelClaimedLocked(c)
	}
	b.mu.Unlock()
	if out != nil && b.onEnd != nil {
		b.onEnd(*out)
	}
}

// cancelClaimedLocked tells the agent to stop (its next post answers
// cancel) and closes the call if the agent does not end it within the grace.
func (b *Broker) cancelClaimedLocked(c *Call) {
	if c.cancelled {
		return
	}
	c.cancelled = true
	c.timers = append(c.timers, time.AfterFunc(b.opts.CancelGrace, func() {
		b.mu.Lock()
		var out *Outcome
		if c.state == stateClaimed {
			why := c.why
			out = b.endLocked(c, why, "the agent did not confirm the cancellation")
		}
		b.mu.Unlock()
		if out != nil && b.onEnd != nil {
			b.onEnd(*out)
		}
	}))
}

// Cancel is the caller going away: a queued call is dropped, a claimed one
// is cancelled on its agent.
func (b *Broker) Cancel(c *Call) {
	b.mu.Lock()
	var out *Outcome
	if c.why == "" {
		c.why = "cancelled"
	}
	switch c.state {
	case stateQueued:
		b.dequeueLocked(c)
		b.resolveLocked(c, &Result{Err: context.Canceled})
		out = b.endLocked(c, "cancelled", "")
	case stateClaimed:
		b.resolveLocked(c, &Result{Err: context.Canceled})
		b.cancelClaimedLocked(c)
	}
	b.mu.Unlock()
	if out != nil && b.onEnd != nil {
		b.onEnd(*out)
	}
}

// Next returns the text generated since the last call, or the result once
// the call is over (after all its text). When ctx ends first the call is
// cancelled and ctx's error returned.
func (c *Call) Next(ctx context.Context) (string, *Result, error) {
	for {
		c.b.mu.Lock()
		text := c.pending.String()
		c.pending.Reset()
		res := c.result
		c.b.mu.Unlock()
		if text != "" {
			return text, nil, nil
		}
		if res != nil {
			return "", res, nil
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			c.b.Cancel(c)
			return "", nil, ctx.Err()
		}
	}
}
