package storage_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/brightrun/brightrun/internal/storage"
	"github.com/brightrun/brightrun/internal/storage/storagetest"
)

func TestCleanPath(t *testing.T) {
	valid := []string{
		"a",
		"user-1/dataset-2/train.jsonl",
		"3f2b1c9e-0000-4000-8000-000000000000/ab/EQ-12 v4.json",
		"u/d/données_été.json", // unicode is fine in paths
		"u/d/日本語.jsonl",
		"u/.hidden",
		"u/...", // three dots is a name, not a relative segment
		"a+b=c@d,e(f)!~'.json",
		strings.Repeat("a", storage.MaxSegmentLen),
		strings.Repeat("abcdefg/", 127) + "abcdefg", // 1023 bytes
	}
	for _, p := range valid {
		got, err := storage.CleanPath(p)
		if err != nil || got != p {
			t.Errorf("CleanPath(%.60q) = %q, %v; want it unchanged", p, got, err)
		}
	}
	invalid := append([]string{
		"a/.",
		"./a",
		"a/..",
		"../a",
		"a/b/../../../c",
		"..%2f..%2fetc",
		"%2e%2e",
		"%252e%252e",
		"a\\b",
		"C:\\Windows\\win.ini",
		"a\tb",
		"a\rb",
		"a\x7fb",
		"a\u0085b",
		"a\u2028b",
		"\ufeffa",
		" a",
		"a/b ",
		"//a",
		"a/",
		strings.Repeat("a", storage.MaxSegmentLen+1),
		strings.Repeat("abcdefg/", 128) + "x", // 1025 bytes
		".brightrun-upload-x",                 // reserved for backends' temporary files
		"u/d/.brightrun-upload-0a1b.tmp",
	}, storagetest.BadPaths...)
	for _, p := range invalid {
		if got, err := storage.CleanPath(p); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("CleanPath(%.60q) = %q, %v; want ErrInvalidPath", p, got, err)
		}
	}
}

func TestSanitizeFileName(t *testing.T) {
	long := strings.Repeat("x", 300) + ".jsonl"
	cases := []struct{ in, want string }{
		{"train.jsonl", "train.jsonl"},
		{"EQ-12_v4.json", "EQ-12_v4.json"},
		{"my data (final).json", "my_data_final_.json"},
		{"../../etc/passwd", "passwd"},
		{"a/../../b", "b"},
		{`C:\fakepath\report.json`, "report.json"},
		{"%2e%2e", "_2e_2e"},
		{"%2e%2e%2fpasswd", "_2e_2e_2fpasswd"},
		{"..", "file"},
		{".", "file"},
		{"...", "file"},
		{"", "file"},
		{"/", "file"},
		{"dir/", "file"},
		{"a\x00b.json", "a_b.json"},
		{"\x00", "file"},
		{"données été.json", "donn_es_t_.json"},
		{"日本語.jsonl", "_.jsonl"},
		{"日本語", "file"},
		{"emoji😀.json", "emoji_.json"},
		{".bashrc", "bashrc"},
		{"name.", "name"},
		{"a  --  b.json", "a_--_b.json"},
		{"semi;colon&amp.json", "semi_colon_amp.json"},
		{"new\nline.json", "new_line.json"},
		{long, strings.Repeat("x", storage.MaxFileNameLen-len(".jsonl")) + ".jsonl"},
		{strings.Repeat("y", 300), strings.Repeat("y", storage.MaxFileNameLen)},
		{strings.Repeat("é", 300) + ".json", "_.json"},
	}
	for _, c := range cases {
		got := storage.SanitizeFileName(c.in)
		if got != c.want {
			t.Errorf("SanitizeFileName(%.40q) = %q, want %q", c.in, got, c.want)
		}
		// Whatever the input, the result is one valid, short path segment.
		if got == "" || got == "." || got == ".." || len(got) > storage.MaxFileNameLen || strings.ContainsAny(got, `/\`) {
			t.Errorf("SanitizeFileName(%.40q) = %q is not a safe name", c.in, got)
		}
		if _, err := storage.CleanPath("u/d/" + got); err != nil {
			t.Errorf("SanitizeFileName(%.40q) = %q is refused by CleanPath: %v", c.in, got, err)
		}
	}
}

func FuzzSanitizeFileName(f *testing.F) {
	for _, s := range []string{"a.json", "../x", "\x00", "日本", strings.Repeat(".", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := storage.SanitizeFileName(in)
		if _, err := storage.CleanPath("u/" + got); err != nil || len(got) > storage.MaxFileNameLen || strings.HasPrefix(got, ".") {
			t.Fatalf("SanitizeFileName(%q) = %q: %v", in, got, err)
		}
	})
}

func TestContentDisposition(t *testing.T) {
	for in, want := range map[string]string{
		"":             "attachment",
		"a.json":       `attachment; filename=a.json`,
		"my file.json": `attachment; filename="my file.json"`,
		`q"uote.txt`:   `attachment; filename="q\"uote.txt"`,
		"été.json":     `attachment; filename*=utf-8''%C3%A9t%C3%A9.json`,
		"a/b\r\n.txt":  `attachment; filename=a_b__.txt`,
	} {
		if got := storage.ContentDisposition(in); got != want {
			t.Errorf("ContentDisposition(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLimitsAndTTL(t *testing.T) {
	if storage.MaxDatasetSize != 500*1024*1024 || storage.MaxModelSize != 5*1024*1024*1024 {
		t.Fatal("bucket limits changed")
	}
	if err := storage.CheckSize(storage.BucketDatasets, storage.MaxDatasetSize+1); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("CheckSize over limit: %v", err)
	}
	if err := storage.CheckSize(storage.BucketDatasets, -1); err == nil {
		t.Fatal("CheckSize(-1): want an error")
	}
	if ttl, err := storage.ResolveTTL(0); err != nil || ttl != storage.DefaultURLTTL {
		t.Fatalf("ResolveTTL(0) = %v, %v", ttl, err)
	}
	if _, err := storage.ResolveTTL(8 * 24 * time.Hour); err == nil {
		t.Fatal("ResolveTTL(8 days): want an error")
	}
	if got := storage.Buckets(); len(got) != 2 || got[0] != storage.BucketDatasets || got[1] != storage.BucketModels {
		t.Fatalf("Buckets() = %v", got)
	}
}
