// Package validate is BrightRun's streaming dataset validator. It detects
// the format of an uploaded dataset (brightrun-lora-v4 JSON document,
// brightrun-lora-v4 JSON Lines, OpenAI chat JSONL), checks every training
// pair, computes statistics and the validation split, and picks sample
// examples, reading the input once with memory that does not grow with the
// file size. docs/datasets-format.md is the user-facing description.
package validate

import (
	"bufio"
	"context"
	"io"
)

// Format names reported in Result.Format.
const (
	FormatV4JSON     = "brightrun_lora_v4"
	FormatV4JSONL    = "brightrun_lora_v4_jsonl"
	FormatOpenAIChat = "openai_chat_jsonl"
)

// Split names used in Example.Split.
const (
	SplitTraining   = "training"
	SplitValidation = "validation"
)

// Options tune Validate. Zero values take the defaults.
type Options struct {
	// ValidationShare is p of the split rule; default 0.10; a negative
	// value means no validation split.
	ValidationShare float64
	// MaxLineBytes caps one JSONL line, and one training pair or single JSON
	// value of the document form; default 8 MiB.
	MaxLineBytes int
	// MaxErrors is the number of errors kept (all are counted); default 100.
	MaxErrors int
	// MaxWarnings is the number of warnings kept; default 100.
	MaxWarnings int
	// SampleSize is the number of sample examples; default 3.
	SampleSize int
	// LongExampleTokens: examples with more estimated tokens get a
	// long_example warning; default 4096.
	LongExampleTokens int
	// MaxDistributionKeys caps the distinct keys of each distribution;
	// default 1000 (the rest are counted under "(other)").
	MaxDistributionKeys int
	// Format forces a format instead of detecting it ("" = detect).
	Format string
	// Visit, when set, is called with every trainable example in file
	// order (with its conversation key; Split is left empty) instead of
	// collecting samples: the dataset preview pages through examples with
	// it. Cancel ctx to stop early.
	Visit func(Example)
	// MaxProfileRows caps the rows of Result.TokenProfile; default 20000
	// (about 16 bytes of memory each during validation).
	MaxProfileRows int
}

func (o Options) withDefaults() Options {
	if o.ValidationShare == 0 {
		o.ValidationShare = 0.10
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 8 << 20
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = 100
	}
	if o.MaxWarnings <= 0 {
		o.MaxWarnings = 100
	}
	if o.SampleSize <= 0 {
		o.SampleSize = 3
	}
	if o.LongExampleTokens <= 0 {
		o.LongExampleTokens = 4096
	}
	if o.MaxDistributionKeys <= 0 {
		o.MaxDistributionKeys = 1000
	}
	if o.MaxProfileRows <= 0 {
		o.MaxProfileRows = 20000
	}
	return o
}

// Result is the outcome of Validate.
type Result struct {
	Format        string  `json:"format"`
	TrainingReady bool    `json:"training_ready"`
	Errors        []Issue `json:"errors"`
	ErrorCount    int     `json:"error_count"`
	Warnings      []Issue `json:"warnings"`
	WarningCount  int     `json:"warning_count"`
	Stats         Stats   `json:"stats"`
	// Sample holds up to SampleSize trainable examples as chat messages:
	// the first trainable example of each of the first conversations, in
	// file order (topped up with further examples when there are fewer
	// conversations).
	Sample    []Example `json:"sample"`
	BytesRead int64     `json:"bytes_read"`
	// TokenProfile is the per-example token estimate (see TokenProfile).
	TokenProfile TokenProfile `json:"token_profile"`
}

// Message is one chat message of an example.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Example is one trainable example as chat messages.
type Example struct {
	ConversationKey string    `json:"conversation_key"`
	Messages        []Message `json:"messages"`
	Split           string    `json:"split"`
}

// Stats are the dataset statistics. See docs/datasets-format.md for the
// precise definitions.
type Stats struct {
	// Conversations counts conversations with at least one trainable
	// example (n of the split rule).
	Conversations int `json:"conversations"`
	// TotalConversations counts every conversation seen, trainable or not.
	TotalConversations int `json:"total_conversations"`
	// TotalPairs counts every training pair / example line seen.
	TotalPairs int `json:"total_pairs"`
	// TrainablePairs = pairs with a non-empty target and no errors
	// = TrainingPairs + ValidationPairs.
	TrainablePairs int `json:"trainable_pairs"`
	// SkippedPairs have no target (null, missing or empty).
	SkippedPairs int `json:"skipped_pairs"`
	// InvalidPairs had at least one error.
	InvalidPairs    int `json:"invalid_pairs"`
	TrainingPairs   int `json:"training_pairs"`
	ValidationPairs int `json:"validation_pairs"`

	AvgTurnsPerConversation float64 `json:"avg_turns_per_conversation"`
	AvgTokensPerTurn        float64 `json:"avg_tokens_per_turn"`
	TotalTokens             int64   `json:"total_tokens"`
	TokensP50               int     `json:"tokens_p50"`
	TokensP95               int     `json:"tokens_p95"`
	TokensMax               int     `json:"tokens_max"`

	PersonaDistribution      map[string]int `json:"persona_distribution"`
	EmotionalArcDistribution map[string]int `json:"emotional_arc_distribution"`
	TopicDistribution        map[string]int `json:"topic_distribution"`

	ValidationConversationKeys []string `json:"validation_conversation_keys"`
}

// Validate reads a dataset from r and checks it. Content problems are
// reported in the Result; the error is non-nil only when reading r fails or
// ctx is done.
func Validate(ctx context.Context, r io.Reader, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	src := &countingReader{r: r}
	br := bufio.NewReaderSize(src, 256<<10)
	v := &run{
		ctx:  ctx,
		opts: opts,
		src:  src,
		br:   br,
		sink: newIssueSink(opts.MaxErrors, opts.MaxWarnings),
	}
	v.agg = newAggregator(opts, v.sink)
	res := &Result{}
	err := v.do(res)
	if err == nil && src.err != nil {
		err = src.err
	}
	if err == nil {
		err = ctx.Err()
	}
	res.BytesRead = src.n
	if err != nil {
		return res, err
	}
	v.agg.finish(res)
	if res.Format != "" && v.agg.trainable == 0 && v.sink.errorCount == 0 {
		v.sink.errorf(0, 0, "", CodeNoTrainableExamples, "the file has no trainable example (%d pairs, none with a non-empty target)", v.agg.totalPairs)
	}
	v.sink.finish()
	res.Errors, res.ErrorCount = v.sink.errors, v.sink.errorCount
	res.Warnings, res.WarningCount = v.sink.warnings, v.sink.warningCount
	if res.Errors == nil {
		res.Errors = []Issue{}
	}
	if res.Warnings == nil {
		res.Warnings = []Issue{}
	}
	res.TrainingReady = res.ErrorCount == 0 && res.Stats.TrainablePairs > 0
	return res, nil
}

// run is the state of one Validate call.
type run struct {
	ctx  context.Context
	opts Options
	src  *countingReader
	br   *bufio.Reader
	sink *issueSink
	agg  *aggregator
}

func (v *run) do(res *Result) error {
	// UTF-8 byte order mark.
	if b, _ := v.br.Peek(3); len(b) == 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		v.br.Discard(3)
	}
	format := v.opts.Format
	if format == "" {
		var err error
		format, err = v.detect()
		if err != nil {
			return err
		}
	}
	res.Format = format
	switch format {
	case FormatV4JSON:
		return v.v4Document()
	case FormatV4JSONL:
		return v.jsonl(false)
	case FormatOpenAIChat:
		return v.jsonl(true)
	}
	return nil
}
