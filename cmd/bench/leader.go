package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// findLeader returns the endpoint whose node reports itself as the leader
// (its id equals the leader it knows). Asking each node whom it follows
// would not do: member ids name peer URLs, not client endpoints. Should
// two nodes both claim leadership, as an old leader cut off from the rest
// can for a while, the one of the higher term is the real one. An endpoint
// that cannot be asked is skipped; its error is kept for the report if no
// leader is found.
func findLeader(ctx context.Context, hc *http.Client, endpoints []string) (string, error) {
	var (
		best     string
		bestTerm uint64
		errs     []error
	)
	for _, ep := range endpoints {
		st, err := fetchStatus(ctx, hc, ep)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.ID == 0 || st.ID != st.Leader {
			continue
		}
		if best == "" || st.Term > bestTerm {
			best, bestTerm = ep, st.Term
		}
	}
	if best == "" {
		if len(errs) > 0 {
			return "", fmt.Errorf("%w: %w", errNoLeader, errors.Join(errs...))
		}
		return "", errNoLeader
	}
	return best, nil
}
