package openai

import "testing"

func TestCheckpointIDsRoundTrip(t *testing.T) {
	const ft = "0123abcd-0000-4000-8000-00000000beef"
	id := CheckpointID(ft, 12)
	if got, step, ok := ParseCheckpointID(id); !ok || got != ft || step != 12 {
		t.Fatalf("ParseCheckpointID(%q) = %q %d %v", id, got, step, ok)
	}
	suffix := "my-run"
	for _, name := range []string{
		CheckpointModelName("HuggingFaceTB/SmolLM2-135M-Instruct", &suffix, "", ft, 40),
		CheckpointModelName("org/base:v2", nil, "Support bot v3", ft, 40),
	} {
		if got, step, ok := ParseCheckpointModel(name); !ok || got != ft || step != 40 {
			t.Fatalf("ParseCheckpointModel(%q) = %q %d %v", name, got, step, ok)
		}
	}
	if n := CheckpointModelName("b", nil, "Support bot v3", ft, 4); n != "ft:b:support-bot-v3:"+JobID(ft)+":ckpt-step-4" {
		t.Fatalf("name: %s", n)
	}
	for _, bad := range []string{"ftckpt-" + hexID(ft), "ftckpt-" + hexID(ft) + "s0", "ftckpt-" + hexID(ft) + "s012", "ftckpt-" + hexID(ft) + "x3",
		"ftckpt-zz" + hexID(ft)[2:] + "s3", "ftckpt-" + hexID(ft) + "s-1"} {
		if _, _, ok := ParseCheckpointID(bad); ok {
			t.Errorf("ParseCheckpointID accepted %q", bad)
		}
	}
	for _, bad := range []string{"ft:b:x:" + JobID(ft), "ft:b:x:" + JobID(ft) + ":ckpt-step-", "ft:b:x:" + JobID(ft) + ":ckpt-step-0",
		"ft:b:x:ftjob-nothex:ckpt-step-3", "b:x:" + JobID(ft) + ":ckpt-step-3", "ft:b:x:0123abcd-0000-4000-8000-00000000beef:ckpt-step-3"} {
		if _, _, ok := ParseCheckpointModel(bad); ok {
			t.Errorf("ParseCheckpointModel accepted %q", bad)
		}
	}
}
