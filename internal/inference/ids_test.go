package inference

import "testing"

func TestFineTunedIDRoundTrip(t *testing.T) {
	for _, c := range []struct{ base, label, want string }{
		{"HuggingFaceTB/SmolLM2-135M-Instruct", "My Support Bot!", "ft:HuggingFaceTB/SmolLM2-135M-Instruct:my-support-bot:11111111-2222-3333-4444-555555555555"},
		{"m", "", "ft:m:adapter:11111111-2222-3333-4444-555555555555"},
		{"m", "Ünïcode ✓ name", "ft:m:n-code-name:11111111-2222-3333-4444-555555555555"},
	} {
		id := FineTunedID(c.base, c.label, "11111111-2222-3333-4444-555555555555")
		if id != c.want {
			t.Errorf("FineTunedID(%q, %q) = %q, want %q", c.base, c.label, id, c.want)
		}
		if got, ok := ParseAdapterModelID(id); !ok || got != "11111111-2222-3333-4444-555555555555" {
			t.Errorf("ParseAdapterModelID(%q) = %q %v", id, got, ok)
		}
	}
	for _, bad := range []string{"gpt-4o", "ft:", "ft:m:x:", "HuggingFaceTB/SmolLM2-135M-Instruct"} {
		if _, ok := ParseAdapterModelID(bad); ok {
			t.Errorf("ParseAdapterModelID(%q) accepted", bad)
		}
	}
}
