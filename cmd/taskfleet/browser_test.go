package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taskfleet/taskfleet/sim"
	"github.com/taskfleet/taskfleet/task"
)

// screenshot, when set, makes TestTaskPage save a screenshot of the page
// there (docs/taskpage.png is taken so).
var screenshot = flag.String("screenshot", "", "save a screenshot of the task page to `file`")

// demoURL, with screenshot, makes TestDemoScreenshot take the screenshot
// of a running demo's page instead:
//
//	go run ./cmd/taskfleet demo &
//	go test ./cmd/taskfleet -run TestDemoScreenshot -args -demo-url=http://127.0.0.1:8087 -screenshot=$PWD/docs/taskpage.png
var demoURL = flag.String("demo-url", "", "the `URL` of a running demo's task page (TestDemoScreenshot)")

// browser starts headless Chromium, or skips the test without it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not found: install it with `apt-get install chromium` to run the browser test")
	}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1500, 950), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser: on ctx itself, so that the
	// deadlines of later runs do not end it.
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs a browser action with a deadline.
func do[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eval evaluates JavaScript in the page.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return do(t, ctx, chromedp.Evaluate[T](js))
}

// pageRows are the remote UPIDs of the page's task rows.
func pageRows(t *testing.T, ctx context.Context) []string {
	return eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#list tbody tr')).map(r => r.dataset.upid)`)
}

// waitList waits until the page has loaded the list for query.
func waitList(t *testing.T, rg *webRig, ctx context.Context, query string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for eval[string](t, ctx, `document.body.dataset.listState + '|' + document.body.dataset.listQuery`) != "loaded|"+query {
		if time.Now().After(deadline) {
			t.Fatalf("page lists %s: not within 10s; page state %s", query, eval[string](t, ctx,
				`JSON.stringify({list: document.body.dataset.listState, query: document.body.dataset.listQuery, message: document.querySelector('#message').textContent, login: document.querySelector('#tokendialog').open, token: !!sessionStorage.getItem('taskfleet.token')})`))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setFilter sets a filter field as a user would and fires its change.
func setFilter(t *testing.T, ctx context.Context, name, value string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector('#filters [name=%q]');
		if (e.type === 'checkbox') e.checked = %q === '1'; else e.value = %q;
		e.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, name, value, value)
	eval[bool](t, ctx, js)
}

// TestTaskPage drives the task page in Chromium against the daemon and a
// simulated fleet: it lists the tasks; the type, status and remote filters
// give the API's rows; a task started on the simulator appears within 2 s
// without a reload and turns finished when it ends; a failed task's log
// opens.
func TestTaskPage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium against the daemon")
	}
	ctx := browser(t)
	rg := newWebRig(t, sim.Config{Seed: 7, PVEClusters: 3, PBSServers: 1, NodesPerCluster: 2, TaskRate: 4, History: 48 * time.Hour})
	do(t, ctx, chromedp.Navigate(rg.url+"/"))
	waitList(t, rg, ctx, "start=0&limit=50")
	want, _ := rg.list("start=0&limit=50")
	if got := pageRows(t, ctx); !slices.Equal(got, want) || len(got) != 50 {
		t.Fatalf("page lists %d rows, want the API's %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}

	// Filters: the same rows as the API for the same filters.
	remote := rg.fleet.Remotes()[0].ID
	rg.eventually(10*time.Second, "remote choices", func() bool {
		return eval[int](t, ctx, `document.querySelector('#filters [name=remote]').options.length`) > len(rg.fleet.Remotes())
	})
	for _, c := range []struct{ name, value, query string }{
		{"typefilter", "vzdump", "typefilter=vzdump"},
		{"statusfilter", "error", "typefilter=vzdump&statusfilter=error"},
		{"typefilter", "", "statusfilter=error"},
		{"remote", remote, "statusfilter=error&remote=" + remote},
		{"statusfilter", "", "remote=" + remote},
		{"remote", "", ""},
	} {
		setFilter(t, ctx, c.name, c.value)
		q := strings.TrimPrefix(c.query+"&start=0&limit=50", "&")
		waitList(t, rg, ctx, q)
		want, _ := rg.list(q)
		if got := pageRows(t, ctx); !slices.Equal(got, want) {
			t.Errorf("filter %s: page rows %v, API rows %v", q, got, want)
		}
	}

	// Live: a task started on the simulator appears without a reload.
	rg.eventually(10*time.Second, "live", func() bool { return eval[string](t, ctx, `document.querySelector('#live').textContent`) == "live" })
	eval[bool](t, ctx, `window.notReloaded = true`)
	pve := rg.fleet.Remotes()[0]
	began := time.Now()
	u := rg.fleet.StartTask(pve.ID, pve.Endpoints[0].Node, "vzdump", "", 30*time.Second)
	id := task.RemoteUPID{Remote: pve.ID, UPID: u}.String()
	var appeared time.Duration
	defer func() { t.Logf("the started task appeared on the page after %v", appeared) }()
	rowStatus := fmt.Sprintf(`(() => { const r = document.querySelector('#list tbody tr[data-upid=%q]'); return r ? r.dataset.status : ''; })()`, id)
	rg.eventually(10*time.Second, "started task on the page", func() bool { return eval[string](t, ctx, rowStatus) == "running" })
	appeared = time.Since(began)
	if appeared > 2*time.Second {
		t.Errorf("the started task appeared after %v, want within 2s", appeared)
	}
	if eval[bool](t, ctx, `document.querySelector('#list tbody tr[data-upid="`+id+`"] .spinner') !== null`) != true {
		t.Error("a running task's end time shows no spinner")
	}
	if *screenshot != "" && *demoURL == "" {
		png := do(t, ctx, chromedp.FullScreenshot(100))
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rg.clock.Advance(31 * time.Second)
	rg.eventually(10*time.Second, "finished task on the page", func() bool { return eval[string](t, ctx, rowStatus) == "ok" })
	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Error("the page was reloaded")
	}

	// A failed task's log opens.
	setFilter(t, ctx, "statusfilter", "error")
	waitList(t, rg, ctx, "statusfilter=error&start=0&limit=50")
	eval[bool](t, ctx, `document.querySelector('#list tbody tr').click() || true`)
	rg.eventually(10*time.Second, "log loaded", func() bool { return eval[string](t, ctx, `document.body.dataset.logState`) == "loaded" })
	text := eval[string](t, ctx, `document.querySelector('#logtext').textContent`)
	if !strings.Contains(text, "TASK ERROR: ") || !eval[bool](t, ctx, `document.querySelector('#logdialog').open`) {
		t.Errorf("failed task's log dialog shows %q", text)
	}
}

// TestTaskPageToken: with API tokens the page asks for one, keeps it in
// the tab's sessionStorage and sends it in a header, never in a URL; a
// scoped token sees its remote only.
func TestTaskPageToken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium against the daemon")
	}
	ctx := browser(t)
	rg := newWebRigWith(t, sim.Config{Seed: 8, PVEClusters: 2, PBSServers: 1, NodesPerCluster: 1, TaskRate: 2, History: 24 * time.Hour}, tokensTOML)
	do(t, ctx, chromedp.Navigate(rg.url+"/"))
	rg.eventually(10*time.Second, "token dialog", func() bool { return eval[bool](t, ctx, `document.querySelector('#tokendialog').open`) })
	eval[bool](t, ctx, fmt.Sprintf(`(() => { document.querySelector('#tokeninput').value = %q;
		document.querySelector('#tokenform button[value=ok]').click(); return true; })()`, teamSecret))
	waitList(t, rg, ctx, "start=0&limit=50")
	if eval[bool](t, ctx, `document.querySelector('#tokendialog').open`) {
		t.Error("the token dialog is open again after a token was given")
	}
	rows := pageRows(t, ctx)
	if len(rows) == 0 {
		t.Fatal("no rows with the token")
	}
	for _, r := range rows {
		if !strings.HasPrefix(r, "pve:"+scopedRemote+"!") {
			t.Errorf("the team token sees %s", r)
		}
	}
	rg.eventually(10*time.Second, "live", func() bool { return eval[string](t, ctx, `document.querySelector('#live').textContent`) == "live" })
	urls := eval[[]string](t, ctx, `performance.getEntriesByType('resource').map(e => e.name).concat([location.href])`)
	for _, u := range urls {
		if strings.Contains(u, teamSecret) {
			t.Errorf("the token is in a URL: %s", u)
		}
	}
	if got := eval[string](t, ctx, `sessionStorage.getItem('taskfleet.token')`); got != teamSecret {
		t.Errorf("sessionStorage holds %q", got)
	}
	if got := eval[int](t, ctx, `localStorage.length + document.cookie.length`); got != 0 {
		t.Errorf("the token went to localStorage or a cookie")
	}
}

// TestDemoScreenshot saves a screenshot of a running demo's page (see
// demoURL); it is skipped unless -demo-url and -screenshot are given.
func TestDemoScreenshot(t *testing.T) {
	if *demoURL == "" || *screenshot == "" {
		t.Skip("takes docs/taskpage.png from a running demo: -demo-url and -screenshot")
	}
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(*demoURL+"/"))
	deadline := time.Now().Add(30 * time.Second)
	for eval[string](t, ctx, `document.body.dataset.listState + document.querySelector('#live').textContent`) != "loadedlive" {
		if time.Now().After(deadline) {
			t.Fatal("the demo's page did not load")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // the panels
	png := do(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
