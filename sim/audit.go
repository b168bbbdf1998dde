package sim

import (
	"net/http"

	"github.com/taskfleet/taskfleet/task"
)

// The audit privilege. PVE lists every user's tasks only to a token with
// Sys.Audit (PVEAuditor on /); PBS only to one with Sys.Audit on
// /system/tasks (the Audit role on /). Without it both list the caller's
// own tasks and nothing else, without an error: the NoAudit fault. Here a
// token's own tasks are the tasks it started (userToken).

// hiddenTask reports whether a task list hides rp from the token: with
// the NoAudit fault, every task the token did not start.
func hiddenTask(fl Fault, rp *rec) bool { return fl.NoAudit && rp.user != userToken }

// isPermissions reports whether segs is access/permissions.
func isPermissions(segs []string) bool {
	return len(segs) == 2 && segs[0] == "access" && segs[1] == "permissions"
}

// permissions answers GET /access/permissions[?path=P] as both products
// do for an API token: the token's privileges by ACL path, PVE with 1
// (propagated) and PBS with true. The token has the auditor role on /
// unless the fault says otherwise; with path, only that path is listed.
func (s *nodeServer) permissions(r *http.Request, fl Fault) reply {
	path := r.URL.Query().Get("path")
	pbs := s.n.remote.kind == task.PBS
	privs := map[string][]string{}
	if !fl.NoAudit {
		if pbs {
			for _, p := range []string{"/", "/system/tasks", "/datastore"} {
				privs[p] = []string{"Sys.Audit", "Datastore.Audit"}
			}
		} else {
			privs["/"] = []string{"Sys.Audit", "VM.Audit", "Datastore.Audit", "Pool.Audit", "SDN.Audit", "Mapping.Audit"}
		}
	}
	out := map[string]map[string]any{}
	for p, names := range privs {
		if path != "" && p != path {
			continue
		}
		m := map[string]any{}
		for _, n := range names {
			if pbs {
				m[n] = true
			} else {
				m[n] = 1
			}
		}
		out[p] = m
	}
	if path != "" && out[path] == nil {
		out[path] = map[string]any{}
	}
	return jsonReply(out, -1, 0)
}

// auditDenied is PVE's answer to /cluster/status for a token without
// Sys.Audit on /.
func auditDenied() reply {
	return pveError(http.StatusForbidden, "Permission check failed (/, Sys.Audit)", nil)
}
