package validate

import (
	"fmt"
	"sort"
)

// Severity values of an Issue.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Issue is one problem found in a dataset. Its JSON form is what the server
// stores in datasets.validation_errors / validation_warnings.
type Issue struct {
	// Line is the 1-based line where the offending value starts (0 for
	// file-level issues such as "no_trainable_examples").
	Line int `json:"line"`
	// Column is the 1-based column (in bytes) for JSON syntax errors and
	// invalid UTF-8.
	Column int `json:"column,omitempty"`
	// Field is the path of the offending value, e.g.
	// conversations[3].training_pairs[2].target_response (indexes 0-based).
	Field      string `json:"field,omitempty"`
	Code       string `json:"code"`
	Error      string `json:"error"`
	Suggestion string `json:"suggestion,omitempty"`
	Severity   string `json:"severity"`
	// Count is set on aggregated warnings (one entry standing for Count
	// occurrences; Line is the first one).
	Count int `json:"count,omitempty"`
}

// Error codes. Every code is documented in docs/datasets-format.md.
const (
	CodeEmptyFile           = "empty_file"
	CodeUnknownFormat       = "unknown_format"
	CodeInvalidJSON         = "invalid_json"
	CodeTruncated           = "truncated"
	CodeInvalidUTF8         = "invalid_utf8"
	CodeLineTooLong         = "line_too_long"
	CodeValueTooLarge       = "value_too_large"
	CodeNotAnObject         = "not_an_object"
	CodeWrongType           = "wrong_type"
	CodeMissingField        = "missing_field"
	CodeEmptyField          = "empty_field"
	CodeUnknownRole         = "unknown_role"
	CodeNoUserMessage       = "no_user_message"
	CodeMisplacedHeader     = "misplaced_header"
	CodeNoTrainableExamples = "no_trainable_examples"
)

// Warning codes.
const (
	WarnSkippedNoTarget       = "skipped_no_target"
	WarnHeaderCountMismatch   = "header_count_mismatch"
	WarnMissingHeader         = "missing_header"
	WarnInputRepeatsHistory   = "input_repeats_history"
	WarnEmptySystemPrompt     = "empty_system_prompt"
	WarnLongExample           = "long_example"
	WarnConsecutiveSameRole   = "consecutive_same_role"
	WarnEmptyTurnContent      = "empty_turn_content"
	WarnDuplicateConversation = "duplicate_conversation"
	WarnDistributionOverflow  = "distribution_overflow"
)

// suggestions holds the default suggestion for each code.
var suggestions = map[string]string{
	CodeEmptyFile:           "The file has no content. Upload the exported dataset file again.",
	CodeUnknownFormat:       "Upload a brightrun-lora-v4 JSON document, brightrun-lora-v4 JSON Lines, or OpenAI chat JSONL ({\"messages\":[{\"role\":…,\"content\":…}]} per line).",
	CodeInvalidJSON:         "Fix the JSON syntax at this position (a missing comma, quote or bracket is the usual cause); validate the file with a JSON linter.",
	CodeTruncated:           "The file ends in the middle of a JSON value; it was probably cut off during export or upload. Upload the complete file.",
	CodeInvalidUTF8:         "Save the file as UTF-8 (not Latin-1/Windows-1252) and upload it again.",
	CodeLineTooLong:         "Split the example into shorter examples or remove the oversized content; one line may not exceed the size limit.",
	CodeValueTooLarge:       "One JSON value exceeds the size limit; shorten it or split the conversation.",
	CodeNotAnObject:         "Each line must be one JSON object.",
	CodeWrongType:           "Change the value to the expected JSON type.",
	CodeMissingField:        "Add the required field.",
	CodeEmptyField:          "Fill in the field; it may not be empty.",
	CodeUnknownRole:         "Use role \"user\" or \"assistant\" (or \"system\" for the first OpenAI message).",
	CodeNoUserMessage:       "Add at least one message with role \"user\".",
	CodeMisplacedHeader:     "The {\"_meta\": …} header may only appear on the first line; remove this line.",
	CodeNoTrainableExamples: "Add examples with a non-empty target_response (or OpenAI messages ending in a non-empty assistant turn).",

	WarnSkippedNoTarget:       "Nothing to do if these are user turns; only pairs with a target_response are trained on.",
	WarnHeaderCountMismatch:   "Update the header counts to match the content (informational; the content counts are used).",
	WarnMissingHeader:         "Add a {\"_meta\": {\"file_name\":…, \"total_pairs\":…, \"version\":\"4.0.0\"}} first line (optional).",
	WarnInputRepeatsHistory:   "Nothing to do: the input is not repeated in the training example.",
	WarnEmptySystemPrompt:     "Add a system prompt describing the assistant, or ignore if none is intended.",
	WarnLongExample:           "Long examples may be truncated at the training max sequence length; consider splitting the conversation.",
	WarnConsecutiveSameRole:   "Consecutive messages of the same role were merged (joined with a blank line); make turns alternate user/assistant.",
	WarnEmptyTurnContent:      "Remove the empty turn or fill in its content.",
	WarnDuplicateConversation: "Give each conversation a unique conversation_id; pairs with the same id are treated as one conversation.",
	WarnDistributionOverflow:  "Too many distinct values; the rest are counted under \"(other)\".",
}

// aggregated warning codes are reported once with a Count.
var aggregated = map[string]bool{
	WarnSkippedNoTarget:     true,
	WarnInputRepeatsHistory: true,
	WarnEmptySystemPrompt:   true,
}

type issueSink struct {
	maxErrors, maxWarnings int
	errors, warnings       []Issue
	errorCount             int
	warningCount           int
	agg                    map[string]int // code -> index in warnings
	aggCount               map[string]int
}

func newIssueSink(maxE, maxW int) *issueSink {
	return &issueSink{maxErrors: maxE, maxWarnings: maxW, agg: map[string]int{}, aggCount: map[string]int{}}
}

func (s *issueSink) errorf(line, col int, field, code, format string, args ...any) {
	s.errorCount++
	if len(s.errors) >= s.maxErrors {
		return
	}
	s.errors = append(s.errors, Issue{Line: line, Column: col, Field: field, Code: code,
		Error: fmt.Sprintf(format, args...), Suggestion: suggestions[code], Severity: SeverityError})
}

func (s *issueSink) warnf(line int, field, code, format string, args ...any) {
	s.warningCount++
	if aggregated[code] {
		s.aggCount[code]++
		if _, ok := s.agg[code]; ok {
			return
		}
		if len(s.warnings) >= s.maxWarnings {
			return
		}
		s.agg[code] = len(s.warnings)
	} else if len(s.warnings) >= s.maxWarnings {
		return
	}
	s.warnings = append(s.warnings, Issue{Line: line, Field: field, Code: code,
		Error: fmt.Sprintf(format, args...), Suggestion: suggestions[code], Severity: SeverityWarning})
}

// finish fills in counts of aggregated warnings and orders issues by line.
func (s *issueSink) finish() {
	for code, i := range s.agg {
		w := &s.warnings[i]
		w.Count = s.aggCount[code]
		if w.Count > 1 {
			w.Error = fmt.Sprintf("%s (%d occurrences; first at line %d)", w.Error, w.Count, w.Line)
		}
	}
	sort.SliceStable(s.errors, func(i, j int) bool { return s.errors[i].Line < s.errors[j].Line })
	sort.SliceStable(s.warnings, func(i, j int) bool { return s.warnings[i].Line < s.warnings[j].Line })
}
