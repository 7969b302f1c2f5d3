package textsafe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	cases := []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "hello", 10, "hello"},
		{"nul removed", "a\x00b", 10, "ab"},
		{"controls removed, newlines kept", "a\x01\x7fb\nc\td", 0, "ab\nc\td"},
		{"invalid utf8 replaced", "ua\xffx", 0, "ua\uFFFDx"},
		{"cut by runes", "ééééé", 3, "éé…"},
		{"no cut at limit", "ééé", 3, "ééé"},
		{"emoji not split", strings.Repeat("😀", 600), 500, strings.Repeat("😀", 499) + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Clean(c.in, c.max)
			if got != c.want {
				t.Fatalf("Clean(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("not valid UTF-8: %q", got)
			}
		})
	}
}

func TestCutNeverSplitsACharacter(t *testing.T) {
	s := strings.Repeat("aé€😀", 2000)
	for max := 1; max < 50; max++ {
		got := Cut(s, max)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) != max {
			t.Fatalf("Cut(_, %d) = %q (%d runes)", max, got, utf8.RuneCountInString(got))
		}
	}
}

func TestLine(t *testing.T) {
	if got := Line("Mozilla\r\n5.0\x00\xff", 100); got != "Mozilla  5.0\uFFFD" {
		t.Fatalf("Line = %q", got)
	}
}

func TestProblem(t *testing.T) {
	cases := []struct {
		in        string
		multiline bool
		bad       bool
	}{
		{"fine name", false, false},
		{"a\x00b", true, true},
		{"bad\xff", false, true},
		{"two\nlines", false, true},
		{"two\nlines", true, false},
		{"bell\a", true, true},
		{"emoji 😀 ok", false, false},
	}
	for _, c := range cases {
		got := Problem(c.in, c.multiline)
		if (got != "") != c.bad {
			t.Errorf("Problem(%q, %v) = %q, want bad=%v", c.in, c.multiline, got, c.bad)
		}
	}
	if got := Problem("x\x01", false); !strings.Contains(got, "U+0001") {
		t.Errorf("message %q does not name the character", got)
	}
}
