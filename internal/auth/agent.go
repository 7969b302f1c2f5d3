package auth

import (
	"context"
	"net/http"
	"strings"

	"github.com/brightrun/brightrun/internal/apperr"
	"github.com/brightrun/brightrun/internal/store"
)

// AgentTokenPrefix starts every agent token (docs/agent-protocol.md).
const AgentTokenPrefix = "bra_"

// AgentLookup finds an agent by the hash of its token.
type AgentLookup interface {
	AgentByTokenHash(ctx context.Context, hash string) (store.Agent, error)
}

// Agent is the agent whose token the request carries (Authorization:
// Bearer bra_…): every agent route (training, inference, agent work)
// authenticates this one way. A revoked or unknown token is the store's
// Unauthorized.
func Agent(r *http.Request, st AgentLookup) (store.Agent, error) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(tok, AgentTokenPrefix) {
		return store.Agent{}, apperr.Unauthorized("send the agent token: Authorization: Bearer bra_… (create one with `brightrun agents create --name N`)")
	}
	return st.AgentByTokenHash(store.AsSystem(r.Context()), HashSecret(tok))
}
