package acl

// Datadriven scripts (github.com/cockroachdb/datadriven): each
// testdata/*.txt file is a script of commands, each followed by "----" and
// the output it must produce. Run with -rewrite to regenerate the expected
// outputs after an intended change, then review the diff.
//
// Commands:
//
//	config [super=User:a;User:b] [allow-if-none=true] [max=N]   fresh authorizer
//	create                  one binding per input line:
//	                        TYPE PATTERN NAME PRINCIPAL HOST PERMISSION OPERATION
//	                        ("-" for an empty field); prints one result per line
//	authorize               one query per input line: PRINCIPAL HOST OPERATION TYPE NAME
//	by-type                 one query per input line: PRINCIPAL HOST OPERATION TYPE
//	idempotent              one query per input line: PRINCIPAL HOST
//	describe [filter]       prints the bindings the filter matches
//	delete                  one filter per input line; prints what each deleted
//	list                    every binding
//	roundtrip               Encode, Decode, Load into a fresh authorizer; prints
//	                        the size and whether the set survived
//
// A filter is key=value words, each optional: type= pattern= name=
// principal= host= op= perm= (enums default to ANY, strings to "any").

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

func TestDataDriven(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.txt")
	if len(paths) == 0 {
		t.Fatal("no testdata")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			a := New(Config{})
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				out, err := handle(&a, d)
				if err != nil {
					d.Fatalf(t, "%v", err)
				}
				return out
			})
		})
	}
}

func handle(ap **Authorizer, d *datadriven.TestData) (string, error) {
	a := *ap
	var out strings.Builder
	lines := func() []string {
		var ls []string
		for _, l := range strings.Split(d.Input, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				ls = append(ls, l)
			}
		}
		return ls
	}
	switch d.Cmd {
	case "config":
		var cfg Config
		for _, arg := range d.CmdArgs {
			v := strings.Join(arg.Vals, ",")
			switch arg.Key {
			case "super":
				su, err := ParseSuperUsers(v)
				if err != nil {
					return err.Error(), nil
				}
				cfg.SuperUsers = su
			case "allow-if-none":
				cfg.AllowEveryoneIfNoACLFound = v == "true"
			case "max":
				n, err := strconv.Atoi(v)
				if err != nil {
					return "", err
				}
				cfg.MaxBindings = n
			default:
				return "", fmt.Errorf("unknown config key %q", arg.Key)
			}
		}
		*ap = New(cfg)
	case "create":
		var bs []Binding
		for _, l := range lines() {
			b, err := parseBinding(l)
			if err != nil {
				return "", err
			}
			bs = append(bs, b)
		}
		for i, r := range a.Create(bs) {
			if r.Err == nil {
				fmt.Fprintf(&out, "%s: ok\n", bs[i])
			} else {
				fmt.Fprintf(&out, "%s: %s %q\n", bs[i], r.Err.Message, r.Message)
			}
		}
	case "authorize":
		for _, l := range lines() {
			f := strings.Fields(l)
			if len(f) != 5 {
				return "", fmt.Errorf("authorize wants PRINCIPAL HOST OPERATION TYPE NAME: %q", l)
			}
			p, err := ParsePrincipal(f[0])
			if err != nil {
				return "", err
			}
			op, ok1 := ParseOperation(f[2])
			rt, ok2 := ParseResourceType(f[3])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("bad query %q", l)
			}
			fmt.Fprintf(&out, "%s -> %s\n", l, verdictString(a.Authorize(p, f[1], op, rt, f[4])))
		}
	case "by-type":
		for _, l := range lines() {
			f := strings.Fields(l)
			if len(f) != 4 {
				return "", fmt.Errorf("by-type wants PRINCIPAL HOST OPERATION TYPE: %q", l)
			}
			p, err := ParsePrincipal(f[0])
			if err != nil {
				return "", err
			}
			op, ok1 := ParseOperation(f[2])
			rt, ok2 := ParseResourceType(f[3])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("bad query %q", l)
			}
			fmt.Fprintf(&out, "%s -> %s\n", l, verdictString(a.AuthorizeByResourceType(p, f[1], op, rt)))
		}
	case "idempotent":
		for _, l := range lines() {
			f := strings.Fields(l)
			if len(f) != 2 {
				return "", fmt.Errorf("idempotent wants PRINCIPAL HOST: %q", l)
			}
			p, err := ParsePrincipal(f[0])
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&out, "%s -> %s\n", l, verdictString(a.AuthorizeIdempotentWrite(p, f[1])))
		}
	case "describe":
		var words []string
		for _, arg := range d.CmdArgs {
			words = append(words, arg.Key+"="+strings.Join(arg.Vals, ","))
		}
		f, err := parseFilter(strings.Join(words, " "))
		if err != nil {
			return "", err
		}
		bs, kerrErr, msg := a.Describe(f)
		if kerrErr != nil {
			return fmt.Sprintf("%s %q\n", kerrErr.Message, msg), nil
		}
		printBindings(&out, bs)
	case "delete":
		var fs []Filter
		for _, l := range lines() {
			f, err := parseFilter(l)
			if err != nil {
				return "", err
			}
			fs = append(fs, f)
		}
		for i, r := range a.Delete(fs) {
			if r.Err != nil {
				fmt.Fprintf(&out, "filter %d: %s %q\n", i, r.Err.Message, r.Message)
				continue
			}
			fmt.Fprintf(&out, "filter %d: deleted %d\n", i, len(r.Deleted))
			for _, b := range r.Deleted {
				fmt.Fprintf(&out, "  %s\n", b)
			}
		}
	case "list":
		printBindings(&out, a.Bindings())
	case "roundtrip":
		enc, err := a.Encode()
		if err != nil {
			return "", err
		}
		dec, err := Decode(enc)
		if err != nil {
			return "", err
		}
		fresh := New(Config{})
		if err := fresh.Load(dec); err != nil {
			return "", err
		}
		again, err := fresh.Encode()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&out, "%d bindings, %d bytes, same set: %v, same bytes: %v\n", len(dec), len(enc),
			slices.Equal(dec, a.Bindings()), string(again) == string(enc))
	default:
		return "", fmt.Errorf("unknown command %q", d.Cmd)
	}
	return out.String(), nil
}

func verdictString(ok bool) string {
	if ok {
		return "ALLOWED"
	}
	return "DENIED"
}

func printBindings(out *strings.Builder, bs []Binding) {
	if len(bs) == 0 {
		out.WriteString("(none)\n")
	}
	for _, b := range bs {
		fmt.Fprintf(out, "%s\n", b)
	}
}

// parseBinding reads TYPE PATTERN NAME PRINCIPAL HOST PERMISSION
// OPERATION; names of enums Kafka does not know, or numbers, give their
// code.
func parseBinding(l string) (Binding, error) {
	f := strings.Fields(l)
	if len(f) != 7 {
		return Binding{}, fmt.Errorf("binding wants 7 fields: %q", l)
	}
	for i := range f {
		if f[i] == "-" {
			f[i] = ""
		}
	}
	var b Binding
	rt, ok := ParseResourceType(f[0])
	if !ok {
		return b, fmt.Errorf("bad resource type %q", f[0])
	}
	pt, ok := ParsePatternType(f[1])
	if !ok {
		return b, fmt.Errorf("bad pattern type %q", f[1])
	}
	perm, ok := ParsePermission(f[5])
	if !ok {
		return b, fmt.Errorf("bad permission %q", f[5])
	}
	op, ok := ParseOperation(f[6])
	if !ok {
		return b, fmt.Errorf("bad operation %q", f[6])
	}
	b.Pattern = ResourcePattern{Type: rt, Name: f[2], PatternType: pt}
	b.Entry = Entry{Principal: f[3], Host: f[4], Permission: perm, Operation: op}
	return b, nil
}

func parseFilter(l string) (Filter, error) {
	f := MatchAll
	for _, w := range strings.Fields(l) {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return f, fmt.Errorf("filter word %q is not key=value", w)
		}
		v2 := v
		switch k {
		case "type":
			f.ResourceType, ok = ParseResourceType(v)
		case "pattern":
			f.PatternType, ok = ParsePatternType(v)
		case "op":
			f.Operation, ok = ParseOperation(v)
		case "perm":
			f.Permission, ok = ParsePermission(v)
		case "name":
			f.Name = &v2
		case "principal":
			f.Principal = &v2
		case "host":
			f.Host = &v2
		default:
			return f, fmt.Errorf("unknown filter key %q", k)
		}
		if !ok {
			return f, fmt.Errorf("bad filter value %q", w)
		}
	}
	return f, nil
}
