package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/brightrun/brightrun/internal/datasets/synth"
	"github.com/brightrun/brightrun/internal/datasets/validate"
)

func benchData(b *testing.B, f synth.Format) []byte {
	var buf bytes.Buffer
	if _, err := synth.Write(&buf, synth.Options{Format: f, TargetBytes: 16 << 20, Seed: 42}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func benchValidate(b *testing.B, f synth.Format) {
	data := benchData(b, f)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := validate.Validate(context.Background(), bytes.NewReader(data), validate.Options{})
		if err != nil || res.ErrorCount != 0 {
			b.Fatal(err, res.Errors)
		}
	}
}

func BenchmarkValidateV4JSONL(b *testing.B)  { benchValidate(b, synth.V4JSONL) }
func BenchmarkValidateV4JSON(b *testing.B)   { benchValidate(b, synth.V4JSON) }
func BenchmarkValidateOpenAI(b *testing.B)   { benchValidate(b, synth.OpenAIChat) }
func BenchmarkDecodeOnlyStdlib(b *testing.B) { benchDecode(b, decodeStd) }
func BenchmarkDecodeOnlyV2(b *testing.B)     { benchDecode(b, decodeV2) }

func benchDecode(b *testing.B, fn func(io.Reader) error) {
	data := benchData(b, synth.V4JSONL)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := fn(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
