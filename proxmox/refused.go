package proxmox

import (
	"errors"
	"net/http"
	"time"
)

// ClusterTasksRetryAfter is how long a client remembers that a remote
// refused GET /cluster/tasks (HTTP 403: the token may not see the
// cluster's tasks; 404 or 501: a version without the path). Meanwhile
// ClusterTasksPage fails at once with ErrClusterTasksRefused, without a
// request: change detection is not attempted, and not failed (each
// refusal also costs a connection: pveproxy closes it after any status
// >= 400), on every refresh. After it, the next call asks again, so that
// a granted permission or an upgrade is noticed within the hour.
const ClusterTasksRetryAfter = time.Hour

// ErrClusterTasksRefused is returned (wrapped) by ClusterTasksPage while
// the remote's last refusal is remembered.
var ErrClusterTasksRefused = errors.New("the remote refused /cluster/tasks recently; not asked again yet")

// ClusterTasksRefused reports whether the remote refused GET
// /cluster/tasks less than ClusterTasksRetryAfter ago.
func (c *Client) ClusterTasksRefused() bool {
	at := c.clusterRefused.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < ClusterTasksRetryAfter
}

// refusesClusterTasks reports whether err is an answer that says the
// remote will not list /cluster/tasks for this token.
func refusesClusterTasks(err error) bool {
	var ae *AuthError
	var se *ServerError
	switch {
	case errors.As(err, &ae):
		return ae.StatusCode == http.StatusForbidden
	case errors.As(err, &se):
		return se.StatusCode == http.StatusNotFound || se.StatusCode == http.StatusNotImplemented
	}
	return false
}

// refusedClusterTasks remembers a refusal of GET /cluster/tasks.
func (c *Client) refusedClusterTasks() { c.clusterRefused.Store(time.Now().UnixNano()) }
