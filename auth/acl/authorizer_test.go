package acl

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// benchAuthorizer holds 10,000 bindings spread over literal, prefixed and
// wildcard patterns, the shape of a busy cluster.
func benchAuthorizer(tb testing.TB) *Authorizer {
	a := New(Config{SuperUsers: []Principal{User("admin")}})
	var bs []Binding
	for i := range 10_000 {
		pt := PatternLiteral
		if i%4 == 0 {
			pt = PatternPrefixed
		}
		bs = append(bs, Binding{
			Pattern: ResourcePattern{Type: ResourceTopic, Name: fmt.Sprintf("team%d-topic%d", i%50, i), PatternType: pt},
			Entry:   Entry{Principal: fmt.Sprintf("User:u%d", i%100), Host: WildcardHost, Operation: OpRead, Permission: Allow},
		})
	}
	bs = append(bs,
		Binding{Pattern: ResourcePattern{Type: ResourceTopic, Name: "team7-", PatternType: PatternPrefixed},
			Entry: Entry{Principal: "User:u7", Host: WildcardHost, Operation: OpWrite, Permission: Allow}},
		Binding{Pattern: ResourcePattern{Type: ResourceTopic, Name: WildcardResource, PatternType: PatternLiteral},
			Entry: Entry{Principal: "User:bad", Host: WildcardHost, Operation: OpAll, Permission: Deny}})
	for _, r := range a.Create(bs) {
		if r.Err != nil {
			tb.Fatal(r.Message)
		}
	}
	return a
}

func BenchmarkAuthorize(b *testing.B) {
	a := benchAuthorizer(b)
	p := User("u7")
	host := "10.0.0.1"
	name := "team7-topic1207"
	if !a.Authorize(p, host, OpDescribe, ResourceTopic, name) {
		b.Fatal("expected ALLOWED")
	}
	b.ReportAllocs()
	for b.Loop() {
		if !a.Authorize(p, host, OpWrite, ResourceTopic, name) {
			b.Fatal("expected ALLOWED")
		}
	}
}

func TestAuthorizeDoesNotAllocate(t *testing.T) {
	a := benchAuthorizer(t)
	p, host := User("u7"), "10.0.0.1"
	for _, q := range []struct {
		p    Principal
		op   Operation
		name string
	}{{p, OpWrite, "team7-topic1207"}, {p, OpDescribe, "team7-x"}, {User("bad"), OpRead, "x"}, {User("admin"), OpAll, "x"}, {User("nobody"), OpRead, "nope"}} {
		if n := testing.AllocsPerRun(100, func() { a.Authorize(q.p, host, q.op, ResourceTopic, q.name) }); n != 0 {
			t.Errorf("Authorize(%v, %v, %q) allocates %.1f times", q.p, q.op, q.name, n)
		}
	}
}

// TestConcurrentReaders: readers authorize while a writer adds and removes
// a DENY; every answer is one of the two states' answers, never a torn
// one, and the race detector watches the snapshot handoff.
func TestConcurrentReaders(t *testing.T) {
	a := New(Config{})
	allow := Binding{Pattern: ResourcePattern{Type: ResourceTopic, Name: "t", PatternType: PatternLiteral},
		Entry: Entry{Principal: "User:a", Host: "*", Operation: OpRead, Permission: Allow}}
	deny := allow
	deny.Entry.Permission = Deny
	a.Create([]Binding{allow})
	var stop atomic.Bool
	var wg sync.WaitGroup
	var allowed, denied atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if a.Authorize(User("a"), "h", OpRead, ResourceTopic, "t") {
					allowed.Add(1)
				} else {
					denied.Add(1)
				}
				if !a.Authorize(User("a"), "h", OpDescribe, ResourceTopic, "t") {
					t.Error("DESCRIBE is implied by READ in both states")
					return
				}
			}
		}()
	}
	for range 2000 {
		a.Create([]Binding{deny})
		a.Delete([]Filter{{ResourceType: ResourceTopic, PatternType: PatternLiteral, Operation: OpRead, Permission: Deny}})
	}
	stop.Store(true)
	wg.Wait()
	if a.Len() != 1 || !a.Authorize(User("a"), "h", OpRead, ResourceTopic, "t") {
		t.Fatal("final state should hold the ALLOW only")
	}
	t.Logf("allowed %d denied %d, generation %d", allowed.Load(), denied.Load(), a.Generation())
}

// TestAuthorizeMatchesFilter cross-checks the index against a plain scan:
// a resource is governed by exactly the bindings a MATCH filter on its
// name finds, so Authorize must agree with a brute-force evaluation of
// Kafka's rules over Describe's answer.
func TestAuthorizeMatchesFilter(t *testing.T) {
	names := []string{"a", "ab", "abc", "b", "*", "abd"}
	principals := []string{"User:x", "User:y", "User:*"}
	ops := []Operation{OpRead, OpWrite, OpDescribe, OpAll, OpAlterConfigs, OpDescribeConfigs}
	a := New(Config{})
	var bs []Binding
	seed := uint32(1)
	next := func(n int) int { seed = seed*1664525 + 1013904223; return int(seed>>8) % n }
	for range 60 {
		pt := PatternLiteral
		if next(2) == 0 {
			pt = PatternPrefixed
		}
		perm := Allow
		if next(4) == 0 {
			perm = Deny
		}
		host := "*"
		if next(3) == 0 {
			host = "h1"
		}
		bs = append(bs, Binding{Pattern: ResourcePattern{Type: ResourceTopic, Name: names[next(len(names))], PatternType: pt},
			Entry: Entry{Principal: principals[next(len(principals))], Host: host, Operation: ops[next(len(ops))], Permission: perm}})
	}
	a.Create(bs)
	for _, name := range append(names, "abcd", "zzz") {
		n := name
		applicable, _, _ := a.Describe(Filter{ResourceType: ResourceTopic, Name: &n, PatternType: PatternMatch, Operation: OpAny, Permission: PermissionAny})
		for _, pr := range []string{"User:x", "User:y", "User:z"} {
			p, _ := ParsePrincipal(pr)
			for _, host := range []string{"h1", "h2"} {
				for _, op := range ops {
					want := bruteForce(applicable, p, host, op)
					if got := a.Authorize(p, host, op, ResourceTopic, name); got != want {
						t.Errorf("Authorize(%s, %s, %s, %q) = %v, brute force says %v", pr, host, op, name, got, want)
					}
				}
			}
		}
	}
}

func bruteForce(applicable []Binding, p Principal, host string, op Operation) bool {
	allowed := false
	for _, b := range applicable {
		e := b.Entry
		if e.Principal != p.String() && e.Principal != WildcardPrincipal {
			continue
		}
		if e.Host != "*" && e.Host != host {
			continue
		}
		match := e.Operation == OpAll || e.Operation == op
		if !match && e.Permission == Allow {
			switch op {
			case OpDescribe:
				match = e.Operation == OpRead || e.Operation == OpWrite || e.Operation == OpDelete || e.Operation == OpAlter
			case OpDescribeConfigs:
				match = e.Operation == OpAlterConfigs
			}
		}
		if !match {
			continue
		}
		if e.Permission == Deny {
			return false
		}
		allowed = true
	}
	return allowed
}
