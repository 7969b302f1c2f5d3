package outbound

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/brightrun/brightrun/internal/store"
)

// Webhook formats a channel may choose.
const (
	FormatBrightRun = "brightrun" // BrightRun's payload, X-BrightRun-* headers
	FormatStandard  = "standard"  // Standard Webhooks (webhook-id, -timestamp, -signature), OpenAI's event shape
)

// Formats lists them.
var Formats = []string{FormatBrightRun, FormatStandard}

// StandardEvent is the Standard Webhooks payload in OpenAI's event shape:
// {"id","object":"event","created_at","type","data"}.
type StandardEvent struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	CreatedAt int64  `json:"created_at"`
	Type      string `json:"type"`
	Data      any    `json:"data"`
}

// EventMapper words a notification as an OpenAI event (type and data),
// when one applies: the /v1 face maps job outcomes onto
// fine_tuning.job.succeeded / .failed / .cancelled with the ftjob- id.
type EventMapper interface {
	StandardEvent(ctx context.Context, n store.Notification) (typ string, data any, ok bool)
}

// standardBody is the payload of a Standard Webhooks delivery. A
// notification with no OpenAI event is sent as type "brightrun.<type>"
// with BrightRun's payload as its data.
func (s *Service) standardBody(ctx context.Context, d store.DueDelivery) ([]byte, string, error) {
	n := d.Notification
	ev := StandardEvent{ID: "evt_" + strings.ReplaceAll(n.ID, "-", ""), Object: "event", CreatedAt: n.CreatedAt.Unix()}
	if typ, data, ok := s.mapEvent(ctx, n); ok {
		ev.Type, ev.Data = typ, data
	} else {
		body, err := s.payload(d)
		if err != nil {
			return nil, "", err
		}
		ev.Type, ev.Data = "brightrun."+n.Type, json.RawMessage(body)
	}
	b, err := json.Marshal(ev)
	return b, ev.ID, err
}

func (s *Service) mapEvent(ctx context.Context, n store.Notification) (string, any, bool) {
	if s.Events == nil {
		return "", nil, false
	}
	return s.Events.StandardEvent(ctx, n)
}

// SignStandard is the webhook-signature value of Standard Webhooks:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)), the
// key being the secret after "whsec_" base64-decoded (as OpenAI's SDKs and
// the Standard Webhooks libraries read it), or the secret's bytes.
func SignStandard(secret, id, timestamp string, body []byte) string {
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil {
			key = k
		}
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
