package api

import (
	"encoding/csv"
	"io"
	"mime"
	"strconv"
	"strings"
)

// csvHeader names the columns of a list as CSV: the JSON names of
// TaskListItem, in the same order.
var csvHeader = []string{"upid", "node", "pid", "pstart", "starttime", "worker_type", "worker_id", "user", "endtime", "status"}

// csvEncoder writes a list as CSV (RFC 4180, CRLF line ends), one row per
// task after a header row. Absent values (worker_id, and endtime and
// status of a running task) are empty cells.
type csvEncoder struct {
	w   *csv.Writer
	row []string
}

func newCSVEncoder(w io.Writer) *csvEncoder {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	return &csvEncoder{w: cw, row: make([]string, len(csvHeader))}
}

func (e *csvEncoder) begin() error { return e.w.Write(csvHeader) }

func (e *csvEncoder) task(it TaskListItem) error {
	r := e.row
	r[0] = cell(it.UPID)
	r[1] = cell(it.Node)
	r[2] = strconv.FormatInt(it.PID, 10)
	r[3] = strconv.FormatUint(it.PStart, 10)
	r[4] = strconv.FormatInt(it.StartTime, 10)
	r[5] = cell(it.WorkerType)
	r[6], r[8], r[9] = "", "", ""
	if it.WorkerID != nil {
		r[6] = cell(*it.WorkerID)
	}
	r[7] = cell(it.User)
	if it.EndTime != nil {
		r[8] = strconv.FormatInt(*it.EndTime, 10)
	}
	if it.Status != nil {
		r[9] = cell(*it.Status)
	}
	return e.w.Write(r)
}

func (e *csvEncoder) end() error {
	e.w.Flush()
	return e.w.Error()
}

// cell guards a text cell against formula injection in spreadsheets: a
// value starting with =, +, -, @, a tab or a carriage return (which
// Excel and LibreOffice may run as a formula) gets a leading apostrophe,
// as OWASP recommends. Task data comes from the remotes, so it is not
// trusted.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// prefersCSV reports whether the Accept header values ask for CSV: text/csv
// is listed with a quality above 0 and application/json is not listed with
// a higher one. Wildcards do not count, so browsers get JSON.
func prefersCSV(accept []string) bool {
	csvQ, jsonQ := -1.0, -1.0
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(s, 64); err != nil {
					continue
				}
			}
			switch mt {
			case "text/csv":
				csvQ = max(csvQ, q)
			case "application/json":
				jsonQ = max(jsonQ, q)
			}
		}
	}
	return csvQ > 0 && csvQ >= jsonQ
}
