package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/platform/clients"
)

// CellsCheck is a soft readiness check of every registered cell's stores but the default's
// (which the postgres, mongodb and redis checks cover): degraded, naming the cells whose
// MongoDB or Redis does not answer. Soft on purpose: one cell's outage stops only its tenants,
// and must not take the API out of its load balancer for every other tenant.
func CellsCheck(router *clients.CellRouter) Check {
	return Check{Name: "cells", Soft: true, Probe: func(ctx context.Context) error {
		all, err := router.Registry().List(ctx)
		if err != nil {
			return fmt.Errorf("cell registry unreadable")
		}
		var mu sync.Mutex
		var down []string
		var wg sync.WaitGroup
		for _, c := range all {
			if c.ID == cells.Default || c.State == cells.StateClosed && c.Tenants == 0 {
				continue
			}
			wg.Go(func() {
				if !router.Healthy(ctx, c.ID) {
					mu.Lock()
					down = append(down, c.ID)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(down) > 0 {
			slices.Sort(down)
			return fmt.Errorf("the stores of cell(s) %s do not answer: their tenants wait, the others are served", strings.Join(down, ", "))
		}
		return nil
	}}
}
