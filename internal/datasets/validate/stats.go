package validate

import (
	"sort"
)

// convState is what is kept per conversation: enough for the split and the
// per-conversation statistics (about 100 bytes plus the key).
type convState struct {
	key                     string
	pairs, trainable, turns int32
	persona, arc, topic     string
}

// aggregator accumulates statistics with memory bounded by the number of
// conversations (not pairs or bytes).
type aggregator struct {
	opts Options
	sink *issueSink

	index map[string]int32
	convs []convState

	totalConvs                              int
	totalPairs, trainable, skipped, invalid int
	totalTokens                             int64
	turnTokens, turnCount                   int64
	hist                                    tokenHist
	maxTok                                  int

	primary, extra []Example
	intern         map[string]string
	prof           profiler
}

func newAggregator(opts Options, sink *issueSink) *aggregator {
	return &aggregator{opts: opts, sink: sink, index: map[string]int32{}, intern: map[string]string{},
		prof: profiler{max: opts.MaxProfileRows, rng: 0x9E3779B97F4A7C15}}
}

// conv returns the index of the conversation with key, creating it.
func (a *aggregator) conv(key []byte) (int, bool) {
	if i, ok := a.index[string(key)]; ok {
		return int(i), false
	}
	k := string(key)
	a.index[k] = int32(len(a.convs))
	a.convs = append(a.convs, convState{key: k})
	a.totalConvs++
	return len(a.convs) - 1, true
}

func (a *aggregator) internStr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := a.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(a.intern) < 4*a.opts.MaxDistributionKeys {
		a.intern[s] = s
	}
	return s
}

// example records one trainable example's token statistics.
func (a *aggregator) example(tokens int, turnTokens int) {
	a.trainable++
	a.totalTokens += int64(tokens)
	a.turnTokens += int64(turnTokens)
	a.turnCount += 2
	a.hist.add(tokens)
	if tokens > a.maxTok {
		a.maxTok = tokens
	}
}

// wantSample reports whether an example (the first of its conversation or
// not) would be kept as a sample, so that it is only materialised then.
func (a *aggregator) wantSample(first bool) bool {
	if a.opts.Visit != nil {
		return true
	}
	if first {
		return len(a.primary) < a.opts.SampleSize
	}
	return len(a.extra) < a.opts.SampleSize
}

func (a *aggregator) offerSample(key string, ex Example, first bool) {
	ex.ConversationKey = key
	if a.opts.Visit != nil {
		a.opts.Visit(ex)
		return
	}
	if first && len(a.primary) < a.opts.SampleSize {
		a.primary = append(a.primary, ex)
	} else if !first && len(a.extra) < a.opts.SampleSize {
		a.extra = append(a.extra, ex)
	}
}

func (a *aggregator) finish(res *Result) {
	st := &res.Stats
	st.TotalConversations = a.totalConvs
	st.TotalPairs = a.totalPairs
	st.TrainablePairs = a.trainable
	st.SkippedPairs = a.skipped
	st.InvalidPairs = a.invalid
	st.TotalTokens = a.totalTokens
	st.TokensMax = a.maxTok
	st.TokensP50 = a.hist.percentile(0.50)
	st.TokensP95 = a.hist.percentile(0.95)
	if a.turnCount > 0 {
		st.AvgTokensPerTurn = float64(a.turnTokens) / float64(a.turnCount)
	}

	var keys []string
	var turns int64
	persona, arc, topic := map[string]int{}, map[string]int{}, map[string]int{}
	for i := range a.convs {
		c := &a.convs[i]
		if c.trainable == 0 {
			continue
		}
		keys = append(keys, c.key)
		turns += int64(c.turns)
		a.count(persona, c.persona, "persona")
		a.count(arc, c.arc, "emotional arc")
		a.count(topic, c.topic, "topic")
	}
	st.Conversations = len(keys)
	if len(keys) > 0 {
		st.AvgTurnsPerConversation = float64(turns) / float64(len(keys))
	}
	st.PersonaDistribution, st.EmotionalArcDistribution, st.TopicDistribution = persona, arc, topic

	val := ValidationSplit(keys, a.opts.ValidationShare)
	st.ValidationConversationKeys = make([]string, 0, len(val))
	for k := range val {
		st.ValidationConversationKeys = append(st.ValidationConversationKeys, k)
		st.ValidationPairs += int(a.convs[a.index[k]].trainable)
	}
	sort.Strings(st.ValidationConversationKeys)
	st.TrainingPairs = st.TrainablePairs - st.ValidationPairs

	res.TokenProfile = a.prof.profile(func(c int32) bool { return c >= 0 && val[a.convs[c].key] })

	sample := a.primary
	for _, e := range a.extra {
		if len(sample) >= a.opts.SampleSize {
			break
		}
		sample = append(sample, e)
	}
	for i := range sample {
		sample[i].Split = SplitTraining
		if val[sample[i].ConversationKey] {
			sample[i].Split = SplitValidation
		}
	}
	if sample == nil {
		sample = []Example{}
	}
	res.Sample = sample
}

func (a *aggregator) count(m map[string]int, k, what string) {
	if k == "" {
		return
	}
	if _, ok := m[k]; !ok && len(m) >= a.opts.MaxDistributionKeys {
		if _, ok := m["(other)"]; !ok {
			a.sink.warnf(0, "", WarnDistributionOverflow, "more than %d distinct %s keys", a.opts.MaxDistributionKeys, what)
		}
		k = "(other)"
	}
	m[k]++
}
