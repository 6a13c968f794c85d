package main

import (
	"context"
	"os"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/viewer"
)

// reloadOnSignal reloads the config file at each signal on hups (SIGHUP)
// until ctx ends. Signals that arrive during a reload make one more. Each
// reload is audited as the user "system"; in a cluster it reloads this
// node only.
func (a *app) reloadOnSignal(ctx context.Context, hups <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hups:
			a.logger.Info("SIGHUP: reloading the config file")
			res := a.reload(ctx)
			a.auditSystem(accounts.AuditConfigReload, "config", res.Result, "SIGHUP: "+viewer.ReloadDetail(res))
		}
	}
}

// auditSystem records what the process did on its own (not on a user's
// request) in the audit log, as the user "system".
func (a *app) auditSystem(action, target, outcome, detail string) {
	if a.records == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec := accounts.AuditRecord{Time: time.Now().UTC(), User: "system", Action: action, Target: target, Outcome: outcome,
		Detail: detail}
	if err := a.records.AppendAudit(ctx, rec); err != nil {
		a.logger.Error("audit record not stored", "action", action, "err", err)
	}
}
