package validate

import (
	"bufio"
	"bytes"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

const detectWindow = 64 << 10

// detect looks at the first 64 KiB and returns the format, or "" after
// reporting empty_file / unknown_format. Rules (docs/datasets-format.md):
//   - the top-level keys of the first JSON object decide: any of
//     training_file_metadata, conversations -> v4 JSON document; _meta ->
//     v4 JSONL; messages -> OpenAI chat JSONL; any of current_user_input,
//     target_response, conversation_history, system_prompt -> v4 JSONL
//     without header;
//   - if the first object is not valid JSON, each of the following lines of
//     the window is tried the same way (a JSONL file with a broken first
//     line is still recognised).
func (v *run) detect() (string, error) {
	buf, err := v.br.Peek(detectWindow)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return "", err
	}
	trimmed := bytes.TrimLeft(buf, " \t\r\n")
	if len(trimmed) == 0 {
		if len(buf) < detectWindow {
			v.sink.errorf(0, 0, "", CodeEmptyFile, "the file is empty")
			return "", nil
		}
	}
	if f := sniff(trimmed); f != "" {
		return f, nil
	}
	lines := bytes.Split(buf, []byte{'\n'})
	for i, l := range lines {
		if i == 0 || i > 50 {
			continue
		}
		if f := sniff(bytes.TrimLeft(l, " \t\r")); f != "" && f != FormatV4JSON {
			return f, nil
		}
	}
	firstLine := 1 + bytes.Count(buf[:len(buf)-len(trimmed)], []byte{'\n'})
	msg := "the content is not a brightrun-lora-v4 JSON document, brightrun-lora-v4 JSON Lines or OpenAI chat JSONL"
	if len(trimmed) > 0 {
		switch trimmed[0] {
		case '[':
			msg = "the file is a JSON array; expected a JSON object (v4 document) or one JSON object per line (JSONL)"
		case '{':
			msg = "the first JSON object has none of the keys that identify a supported format (training_file_metadata/conversations, _meta, messages, current_user_input/target_response)"
		default:
			msg = "the file does not start with a JSON object"
		}
	}
	v.sink.errorf(firstLine, 0, "", CodeUnknownFormat, "%s", msg)
	return "", nil
}

// sniff reads the top-level keys of the JSON object starting at b (which
// may be cut off) and classifies them.
func sniff(b []byte) string {
	if len(b) == 0 || b[0] != '{' {
		return ""
	}
	d := jsontext.NewDecoder(bytes.NewBuffer(b), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	if _, err := d.ReadToken(); err != nil {
		return ""
	}
	v4pair := false
	for i := 0; i < 200; i++ {
		if d.PeekKind() == '}' {
			break
		}
		tok, err := d.ReadToken()
		if err != nil || tok.Kind() != '"' {
			break
		}
		switch tok.String() {
		case "training_file_metadata", "conversations", "consultant_profile":
			return FormatV4JSON
		case "_meta":
			return FormatV4JSONL
		case "messages":
			return FormatOpenAIChat
		case "current_user_input", "target_response", "conversation_history", "system_prompt":
			v4pair = true
		}
		if err := d.SkipValue(); err != nil {
			break
		}
	}
	if v4pair {
		return FormatV4JSONL
	}
	return ""
}
