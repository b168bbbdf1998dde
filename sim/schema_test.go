package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/taskfleet/taskfleet/internal/fixtures"
)

// The sim's answers are checked against the fixtures: the API schemas
// (every field the sim sends exists with its JSON type, every required
// field is there, parameter names agree) and the real responses (the same
// keys with the same JSON types in the same state).

// schemaProp is a property of a Proxmox API schema.
type schemaProp struct {
	Type     string   `json:"type"`
	Optional int      `json:"optional"`
	Enum     []string `json:"enum"`
	Note     string   `json:"note"`
}

type schemaMethod struct {
	Parameters struct {
		Properties map[string]schemaProp `json:"properties"`
	} `json:"parameters"`
	Returns struct {
		Type       string                `json:"type"`
		Properties map[string]schemaProp `json:"properties"`
		Items      struct {
			Properties map[string]schemaProp `json:"properties"`
		} `json:"items"`
	} `json:"returns"`
}

type apiSchema struct {
	Paths map[string]map[string]schemaMethod `json:"paths"`
}

func loadSchema(t *testing.T, rel string) apiSchema {
	t.Helper()
	var s apiSchema
	if err := json.Unmarshal(fixtures.Read(t, rel), &s); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return s
}

// returned is the property set of a GET method's result (object or items).
func (s apiSchema) returned(t *testing.T, path string) map[string]schemaProp {
	t.Helper()
	m, ok := s.Paths[path]["GET"]
	if !ok {
		t.Fatalf("schema has no GET %s", path)
	}
	if m.Returns.Type == "array" {
		return m.Returns.Items.Properties
	}
	return m.Returns.Properties
}

// jsonKind is the JSON type of a decoded value (UseNumber).
func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if strings.ContainsAny(x.String(), ".eE") {
			return "number"
		}
		return "integer"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// fits reports whether a value of JSON kind k satisfies schema type typ.
// Proxmox's Perl side writes booleans as 0/1.
func fits(typ string, v any) bool {
	k := jsonKind(v)
	switch typ {
	case "integer":
		return k == "integer"
	case "number":
		return k == "integer" || k == "number"
	case "boolean":
		return k == "boolean" || k == "integer" && (v.(json.Number) == "0" || v.(json.Number) == "1")
	}
	return k == typ
}

// checkObject checks one returned object against schema properties plus
// extra fields (name -> JSON kind) documented elsewhere in the fixtures.
func checkObject(t *testing.T, where string, obj map[string]any, props map[string]schemaProp, extra map[string]string) {
	t.Helper()
	for k, v := range obj {
		p, ok := props[k]
		switch {
		case ok:
			if !fits(p.Type, v) && !(v == nil && p.Optional == 1 && strings.Contains(p.Note, "null")) {
				t.Errorf("%s: field %q = %v (%s), schema type %s", where, k, v, jsonKind(v), p.Type)
			}
			if len(p.Enum) > 0 && !slices.Contains(p.Enum, fmt.Sprint(v)) {
				t.Errorf("%s: field %q = %v, not in %v", where, k, v, p.Enum)
			}
		case extra[k] != "":
			if jsonKind(v) != extra[k] {
				t.Errorf("%s: field %q = %v (%s), want %s", where, k, v, jsonKind(v), extra[k])
			}
		default:
			t.Errorf("%s: field %q is neither in the schema nor in a real response", where, k)
		}
	}
	for k, p := range props {
		if _, ok := obj[k]; !ok && p.Optional == 0 {
			t.Errorf("%s: required field %q missing", where, k)
		}
	}
}

// keyKinds returns the sorted "key:kind" pairs of an object.
func keyKinds(obj map[string]any, skip ...string) []string {
	var out []string
	for k, v := range obj {
		if !slices.Contains(skip, k) {
			out = append(out, k+":"+jsonKind(v))
		}
	}
	sort.Strings(out)
	return out
}

// fixtureData returns the "data" of a real response fixture.
func fixtureData(t *testing.T, rel string) (any, map[string]any) {
	t.Helper()
	var env map[string]any
	dec := json.NewDecoder(bytes.NewReader(fixtures.Read(t, rel)))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return env["data"], env
}

// answer gets a JSON answer and decodes it with numbers kept.
func answer(t *testing.T, c *testClient, remote, node, path string) (map[string]any, any) {
	t.Helper()
	r := c.get(remote, node, path)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, r.status, r.body)
	}
	var env map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return env, env["data"]
}

func objects(t *testing.T, data any) []map[string]any {
	t.Helper()
	list, ok := data.([]any)
	if !ok {
		t.Fatalf("data is %s, want an array", jsonKind(data))
	}
	out := make([]map[string]any, len(list))
	for i, v := range list {
		out[i] = v.(map[string]any)
	}
	return out
}

// tokenID is documented in SOURCES.md for archived PVE token tasks, and
// in the PBS status schema.
var tokenExtra = map[string]string{"tokenid": "string"}

func TestPVEAnswersMatchFixtures(t *testing.T) {
	schema := loadSchema(t, "pve/api-schema.json")
	realList, _ := fixtureData(t, "pve/responses/nodes-node-tasks-source-all-limit3.json")
	realNodes, _ := fixtureData(t, "pve/responses/nodes-list-one-online-node.json")
	realRunning, _ := fixtureData(t, "pve/responses/task-status-running-qmconfig.json")
	realStopped, _ := fixtureData(t, "pve/responses/task-status-stopped-ok-vzcreate.json")
	realRunningItem := objects(t, realList)[0]
	realFinishedItem := objects(t, realList)[1]
	realNode := objects(t, realNodes)[0]

	// Fields real responses carry beyond the schema, with their kinds.
	listExtra := map[string]string{"saved": jsonKind(realRunningItem["saved"]), "tokenid": "string"}
	nodesExtra := map[string]string{}
	for k, v := range realNode {
		if _, ok := schema.returned(t, "/nodes")[k]; !ok {
			nodesExtra[k] = jsonKind(v)
		}
	}

	runInBubble(t, Config{Seed: 50, PVEClusters: 1, History: 2 * 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote, node = "pve-c001", "pve-c001-n1"
		time.Sleep(13 * time.Hour)
		tokTask := f.StartTask(remote, node, "qmclone", "120", time.Hour) // a running token task
		plain := f.StartTask(remote, node, "qmconfig", "113", time.Hour)
		done := f.StartTask(remote, node, "vzcreate", "123", time.Second)
		time.Sleep(time.Minute)
		f.SetFault(remote, "pve-c001-n3", Fault{Offline: true})

		// /nodes/{node}/tasks
		env, data := answer(t, c, remote, node, "/api2/json/nodes/"+node+"/tasks?source=all&limit=5000")
		if keyKinds(env, "data") == nil || fmt.Sprint(keyKinds(env, "data")) != "[total:integer]" {
			t.Errorf("task list envelope %v, want data and an integer total", keyKinds(env, "data"))
		}
		props := schema.returned(t, "/nodes/{node}/tasks")
		var sawRunning, sawFinished, sawToken bool
		for i, it := range objects(t, data) {
			checkObject(t, fmt.Sprintf("task list item %d", i), it, props, listExtra)
			_, token := it["tokenid"]
			sawToken = sawToken || token
			if token {
				continue
			}
			if _, finished := it["endtime"]; finished {
				sawFinished = true
				if got, want := keyKinds(it), keyKinds(realFinishedItem); !slices.Equal(got, want) {
					t.Fatalf("finished item %v, real finished item %v", got, want)
				}
			} else {
				sawRunning = true
				if got, want := keyKinds(it), keyKinds(realRunningItem); !slices.Equal(got, want) {
					t.Fatalf("running item %v, real running item %v", got, want)
				}
			}
		}
		if !sawRunning || !sawFinished || !sawToken {
			t.Fatalf("list lacks a kind of item: running %v, finished %v, token %v", sawRunning, sawFinished, sawToken)
		}

		// /nodes/{node}/tasks/{upid}/status in both states.
		props = schema.returned(t, "/nodes/{node}/tasks/{upid}/status")
		for _, tc := range []struct {
			upid string
			real any
		}{{plain.String(), realRunning}, {done.String(), realStopped}, {tokTask.String(), nil}} {
			_, data := answer(t, c, remote, node, "/api2/json/nodes/"+node+"/tasks/"+escapeUPID(tc.upid)+"/status")
			st := data.(map[string]any)
			checkObject(t, "task status", st, props, tokenExtra)
			if tc.real != nil {
				if got, want := keyKinds(st, "tokenid"), keyKinds(tc.real.(map[string]any)); !slices.Equal(got, want) {
					t.Errorf("status %v, real %v", got, want)
				}
			}
		}

		// /nodes, one node offline.
		_, data = answer(t, c, remote, node, "/api2/json/nodes")
		for _, n := range objects(t, data) {
			checkObject(t, "node "+fmt.Sprint(n["node"]), n, schema.returned(t, "/nodes"), nodesExtra)
			if n["status"] == "online" {
				if got, want := keyKinds(n), keyKinds(realNode); !slices.Equal(got, want) {
					t.Errorf("online node %v, real %v", got, want)
				}
			}
		}

		// /cluster/tasks: the schema promises upid; items are task list items.
		_, data = answer(t, c, remote, node, "/api2/json/cluster/tasks")
		listProps := schema.returned(t, "/nodes/{node}/tasks")
		for _, it := range objects(t, data) {
			checkObject(t, "cluster task", it, listProps, listExtra)
			checkObject(t, "cluster task", map[string]any{"upid": it["upid"]}, schema.returned(t, "/cluster/tasks"), nil)
		}

		// /cluster/status
		_, data = answer(t, c, remote, node, "/api2/json/cluster/status")
		for _, e := range objects(t, data) {
			checkObject(t, "cluster status "+fmt.Sprint(e["id"]), e, schema.returned(t, "/cluster/status"), nil)
		}

		// /version
		_, data = answer(t, c, remote, node, "/api2/json/version")
		checkObject(t, "version", data.(map[string]any), schema.returned(t, "/version"), nil)

		// A parameter error has the observed shape.
		r := c.get(remote, node, "/api2/json/nodes/"+node+"/tasks?vmid=1")
		var body map[string]any
		json.Unmarshal(r.body, &body)
		if body["data"] != nil || body["errors"] == nil || len(keyKinds(body, "data", "errors", "message")) != 0 {
			t.Errorf("400 body %s, want {data: null, errors: {...}, message}", r.body)
		}
	})

	// The sim accepts exactly the schema's parameters.
	var names []string
	for k := range schema.Paths["/nodes/{node}/tasks"]["GET"].Parameters.Properties {
		if k != "node" {
			names = append(names, k)
		}
	}
	if !sameSet(names, pveListParams) {
		t.Errorf("PVE list parameters %v, schema %v", pveListParams, names)
	}
	if extra := schema.Paths["/nodes"]["GET"].Parameters.Properties; len(extra) != 0 {
		t.Errorf("schema has /nodes parameters %v the sim refuses", extra)
	}
}

func TestPBSAnswersMatchFixtures(t *testing.T) {
	schema := loadSchema(t, "pbs/api-schema.json")
	realList, realEnv := fixtureData(t, "pbs/responses/nodes-tasks-typefilter-backup-limit3.json")
	realItem := objects(t, realList)[0]

	runInBubble(t, Config{Seed: 51, PBSServers: 1, History: 2 * 24 * time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		const remote = "pbs001"
		time.Sleep(90 * time.Minute) // backups run
		running := f.StartTask(remote, remote, "garbage_collection", "store1", time.Hour)

		env, data := answer(t, c, remote, "", "/api2/json/nodes/localhost/tasks?typefilter=backup&limit=3")
		if got, want := keyKinds(env, "data"), keyKinds(realEnv, "data"); !slices.Equal(got, want) {
			t.Errorf("envelope %v, real %v", got, want)
		}
		if env["total"] != realEnv["total"] {
			t.Errorf("total for limit=3 = %v, real answer says %v (3 + the 'more' marker)", env["total"], realEnv["total"])
		}
		props := schema.returned(t, "/nodes/{node}/tasks")
		_, data = answer(t, c, remote, "", "/api2/json/nodes/localhost/tasks?limit=0")
		var nulls, finished int
		for i, it := range objects(t, data) {
			checkObject(t, fmt.Sprintf("PBS item %d", i), it, props, nil)
			if it["worker_id"] == nil {
				nulls++
			}
			if _, ok := it["endtime"]; ok && it["worker_id"] != nil {
				finished++
				if got, want := keyKinds(it), keyKinds(realItem); !slices.Equal(got, want) {
					t.Fatalf("finished item %v, real %v", got, want)
				}
			}
		}
		if nulls == 0 || finished == 0 {
			t.Fatalf("no item with a null worker_id (%d) or no finished one (%d)", nulls, finished)
		}

		statusProps := schema.returned(t, "/nodes/{node}/tasks/{upid}/status")
		for _, u := range []string{running.String(), realItem["upid"].(string)} {
			_, data := answer(t, c, remote, "", "/api2/json/nodes/localhost/tasks/"+escapeUPID(u)+"/status")
			checkObject(t, "PBS status", data.(map[string]any), statusProps, nil)
		}
	})

	var names []string
	for k := range schema.Paths["/nodes/{node}/tasks"]["GET"].Parameters.Properties {
		if k != "node" {
			names = append(names, k)
		}
	}
	if !sameSet(names, pbsListParams) {
		t.Errorf("PBS list parameters %v, schema %v", pbsListParams, names)
	}
}

// TestEveryListParameterIsAccepted sends each schema parameter with a
// valid value: none is refused.
func TestEveryListParameterIsAccepted(t *testing.T) {
	pve := loadSchema(t, "pve/api-schema.json").Paths["/nodes/{node}/tasks"]["GET"].Parameters.Properties
	pbs := loadSchema(t, "pbs/api-schema.json").Paths["/nodes/{node}/tasks"]["GET"].Parameters.Properties
	value := func(name string, p schemaProp) string {
		switch {
		case name == "vmid":
			return "100"
		case name == "statusfilter":
			return "ok"
		case len(p.Enum) > 0:
			return p.Enum[0]
		case p.Type == "integer":
			return "1"
		case p.Type == "boolean":
			return "1"
		}
		return "x"
	}
	runInBubble(t, Config{Seed: 52, PVEClusters: 1, PBSServers: 1, History: time.Hour}, func(t *testing.T, f *Fleet, c *testClient) {
		for _, tc := range []struct {
			remote, node string
			props        map[string]schemaProp
		}{{"pve-c001", "pve-c001-n1", pve}, {"pbs001", "localhost", pbs}} {
			for name, p := range tc.props {
				if name == "node" {
					continue
				}
				r := c.get(tc.remote, "", "/api2/json/nodes/"+tc.node+"/tasks?"+q(name, value(name, p)))
				if r.status != http.StatusOK {
					t.Errorf("%s: ?%s=%s refused: %d %s", tc.remote, name, value(name, p), r.status, r.body)
				}
			}
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
