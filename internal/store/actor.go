package store

import (
	"context"
	"errors"
)

// Actor is who a store call acts for.
type Actor struct {
	UserID string // empty for the system
	System bool
}

type actorKey struct{}

// WithUser makes store calls act for userID (PostgreSQL: role authenticated
// with sub = userID, so RLS applies).
func WithUser(ctx context.Context, userID string) context.Context {
	return context.WithValue(ctx, actorKey{}, Actor{UserID: userID})
}

// AsSystem makes store calls act for the system (PostgreSQL: service_role).
// Background workers, admin commands and authentication lookups use it.
func AsSystem(ctx context.Context) context.Context {
	return context.WithValue(ctx, actorKey{}, Actor{System: true})
}

// ErrNoActor is returned by a store call whose context has no actor: fail
// closed rather than run a query with unknown privileges.
var ErrNoActor = errors.New("store: no actor in context (use store.WithUser or store.AsSystem)")

// ActorFrom returns the context's actor.
func ActorFrom(ctx context.Context) (Actor, error) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	if !ok || (!a.System && a.UserID == "") {
		return Actor{}, ErrNoActor
	}
	return a, nil
}
