package outbound

import "testing"

// TestSignStandard: the Standard Webhooks signature of a fixed message, as
// computed independently with Python's hmac/base64 the way openai-python's
// webhooks.verify_signature does (whsec_ secrets are base64-decoded).
func TestSignStandard(t *testing.T) {
	secret := "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	if got := SignStandard(secret, "evt_1", "1700000000", []byte(`{"a":1}`)); got != "v1,E91RjL3XwKNvhbIjLEB4Oo053Uu727CszikrY+6s9HE=" {
		t.Fatalf("signature %s", got)
	}
	if SignStandard(secret, "evt_2", "1700000000", []byte(`{"a":1}`)) == SignStandard(secret, "evt_1", "1700000000", []byte(`{"a":1}`)) {
		t.Fatal("the webhook id is not signed")
	}
}
