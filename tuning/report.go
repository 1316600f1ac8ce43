package tuning

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Severity grades a finding. The order matters: a report is as bad as its
// worst finding, and ExitCode is the worst severity's value.
type Severity int

const (
	// OK means the host is set up as we recommend for this check.
	OK Severity = iota
	// Warning means the broker runs but slower, less predictably or less
	// safely than it could; the finding says what to change.
	Warning
	// Fatal means the broker cannot work as configured (e.g. it cannot
	// write its log dir); with tuning.strict=true it refuses to start.
	Fatal
)

// String returns "ok", "warning" or "fatal".
func (s Severity) String() string {
	switch s {
	case OK:
		return "ok"
	case Warning:
		return "warning"
	case Fatal:
		return "fatal"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText makes JSON carry the severity's name, not its number.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText accepts the names String produces.
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "ok":
		*s = OK
	case "warning":
		*s = Warning
	case "fatal":
		*s = Fatal
	default:
		return fmt.Errorf("tuning: unknown severity %q", b)
	}
	return nil
}

// Finding is the outcome of one check on one subject.
type Finding struct {
	// ID is stable across releases ("fs.type", "vm.swappiness"); tooling
	// and docs refer to it.
	ID string `json:"id"`
	// Subject names what was checked when a check runs more than once:
	// a log dir, a network interface, a block device. Empty otherwise.
	Subject string `json:"subject,omitempty"`
	// Severity is how bad Found is.
	Severity Severity `json:"severity"`
	// Found is what the host has, in the operator's terms.
	Found string `json:"found"`
	// Recommended is what we want instead (or what is fine).
	Recommended string `json:"recommended"`
	// Why explains what the setting does to a Kafka broker.
	Why string `json:"why"`
	// Fix is one shell line that applies Recommended (persistently when
	// that is possible in one line); empty when nothing needs fixing or
	// there is no command that can.
	Fix string `json:"fix,omitempty"`
}

// Report is the result of Run: every finding in a fixed order (the order
// the checks run in, then subject), plus what the broker's I/O backend will
// be on this host.
type Report struct {
	Findings []Finding `json:"findings"`
	// IOBackend is "uring" when io_uring passed every check the data path
	// needs, otherwise "portable"; IOBackendReason says why.
	IOBackend       string `json:"io_backend"`
	IOBackendReason string `json:"io_backend_reason"`
}

// Worst returns the highest severity among the findings (OK if none).
func (r *Report) Worst() Severity {
	worst := OK
	for _, f := range r.Findings {
		if f.Severity > worst {
			worst = f.Severity
		}
	}
	return worst
}

// HasFatal reports whether any finding is Fatal: tuning.strict=true must
// then refuse to start.
func (r *Report) HasFatal() bool { return r.Worst() == Fatal }

// ExitCode is the check-host exit status: 0 all ok, 1 warnings, 2 fatal.
func (r *Report) ExitCode() int { return int(r.Worst()) }

// Counts returns how many findings have each severity.
func (r *Report) Counts() (ok, warnings, fatal int) {
	for _, f := range r.Findings {
		switch f.Severity {
		case OK:
			ok++
		case Warning:
			warnings++
		case Fatal:
			fatal++
		}
	}
	return ok, warnings, fatal
}

// Summary is one line for logs and the end of the table, e.g.
// "host check: 31 ok, 5 warnings, 0 fatal; io backend uring; worst: fs.type /data ext4".
func (r *Report) Summary() string {
	ok, warn, fatal := r.Counts()
	var b strings.Builder
	fmt.Fprintf(&b, "host check: %d ok, %d %s, %d fatal; io backend %s", ok, warn, plural(warn, "warning"), fatal, r.IOBackend)
	if w := r.Worst(); w != OK {
		var names []string
		for _, f := range r.Findings {
			if f.Severity == w {
				names = append(names, f.ID)
			}
		}
		names = dedup(names)
		if len(names) > summaryNamesMax {
			names = append(names[:summaryNamesMax], fmt.Sprintf("+%d more", len(names)-summaryNamesMax))
		}
		fmt.Fprintf(&b, "; %s: %s", w, strings.Join(names, ", "))
	}
	return b.String()
}

// summaryNamesMax bounds the check names in Summary so the line stays a
// line; the full list is in the table, the JSON and the per-finding logs.
const summaryNamesMax = 5

// tableCellMax bounds FOUND and RECOMMENDED in the table; the full text of
// every finding that is not ok is printed below it, and JSON has all.
const tableCellMax = 72

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func dedup(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// WriteTable prints the findings as an aligned table, then the reason and
// fix of every finding that is not ok, then the summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tCHECK\tSUBJECT\tFOUND\tRECOMMENDED")
	for _, f := range r.Findings {
		subject := f.Subject
		if subject == "" {
			subject = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Severity, f.ID, subject, cell(f.Found), cell(f.Recommended))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var b strings.Builder
	first := true
	for _, f := range r.Findings {
		if f.Severity == OK {
			continue
		}
		if first {
			b.WriteString("\nTo fix:\n")
			first = false
		}
		name := f.ID
		if f.Subject != "" {
			name += " (" + f.Subject + ")"
		}
		fmt.Fprintf(&b, "\n[%s] %s: %s\n  why: %s\n", f.Severity, name, oneLine(f.Found), f.Why)
		if f.Fix != "" {
			fmt.Fprintf(&b, "  fix: %s\n", f.Fix)
		}
	}
	fmt.Fprintf(&b, "\nio backend: %s (%s)\n%s\n", r.IOBackend, r.IOBackendReason, r.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func cell(s string) string {
	s = oneLine(s)
	if len(s) <= tableCellMax {
		return s
	}
	cut := tableCellMax - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// jsonReport is the JSON document: the findings plus the derived fields a
// script wants without recomputing them.
type jsonReport struct {
	Summary  string `json:"summary"`
	ExitCode int    `json:"exit_code"`
	OK       int    `json:"ok"`
	Warnings int    `json:"warnings"`
	Fatal    int    `json:"fatal"`
	*Report
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	ok, warn, fatal := r.Counts()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // fixes contain && and >; keep them readable
	return enc.Encode(jsonReport{Summary: r.Summary(), ExitCode: r.ExitCode(), OK: ok, Warnings: warn, Fatal: fatal, Report: r})
}

// Log writes the startup summary: one line (at info, warn or error level by
// the worst severity) with the counts and the id of every finding that is
// not ok, pointing at `ringbrokerd check-host` for the advice; then one line
// per fatal finding, with its id, subject, found, recommended, why and fix
// as fields. Warnings get no line of their own: six paragraphs of host
// advice (mkfs.xfs, /etc/fstab edits) at every start read as a broken
// broker on a laptop, and check-host prints them in full.
func (r *Report) Log(l *zap.Logger) {
	summaryAt := l.Info
	switch r.Worst() {
	case Warning:
		summaryAt = l.Warn
	case Fatal:
		summaryAt = l.Error
	}
	ok, warn, fatal := r.Counts()
	msg := r.Summary()
	var ids []string
	for _, f := range r.Findings {
		if f.Severity != OK {
			ids = append(ids, f.ID)
		}
	}
	if len(ids) > 0 {
		msg += "; details and fixes: ringbrokerd check-host"
	}
	summaryAt(msg, zap.Int("ok", ok), zap.Int("warnings", warn), zap.Int("fatal", fatal),
		zap.Strings("checks", dedup(ids)),
		zap.String("io_backend", r.IOBackend), zap.String("io_backend_reason", r.IOBackendReason))
	for _, f := range r.Findings {
		if f.Severity != Fatal {
			continue
		}
		at := l.Error
		fields := []zap.Field{zap.String("check", f.ID)}
		if f.Subject != "" {
			fields = append(fields, zap.String("subject", f.Subject))
		}
		fields = append(fields, zap.String("found", f.Found), zap.String("recommended", f.Recommended),
			zap.String("why", f.Why))
		if f.Fix != "" {
			fields = append(fields, zap.String("fix", f.Fix))
		}
		at("host check "+f.Severity.String()+": "+f.ID, fields...)
	}
}
