package acl

import "slices"

// snapshot is an immutable index of a binding set, built once per change
// and read without locks by any number of goroutines.
//
// Rejected design: Kafka's single sorted set with reverse-ordered resource
// names, walked with tailSet jumps. Go has no allocation-free sorted set in
// the standard library; per resource type, a map for LITERAL names, a list
// for the LITERAL wildcard and a map of PREFIXED names probed with each
// distinct prefix length give the same answer with string-keyed map
// lookups on substrings, which do not allocate.
type snapshot struct {
	types        [resourceTypeCount]typeIndex
	superUsers   map[Principal]struct{}
	defaultAllow bool
	generation   uint64
	bindings     []Binding // sorted by compareBindings
}

// typeIndex holds the entries of one resource type.
type typeIndex struct {
	literal  map[string][]entry // LITERAL bindings by name, except "*"
	wildcard []entry            // LITERAL "*"
	prefixed map[string][]entry // PREFIXED bindings by name
	// prefixLens are the distinct lengths of the PREFIXED names,
	// ascending: the prefixes of a resource name worth probing.
	prefixLens []int
}

// entry is a binding's entry, with its principal split once.
type entry struct {
	principalType     string
	principalName     string
	wildcardPrincipal bool // "User:*"
	host              string
	op                Operation
	allow             bool
}

func buildSnapshot(set map[Binding]struct{}, cfg *Config, generation uint64) *snapshot {
	s := &snapshot{
		superUsers:   make(map[Principal]struct{}, len(cfg.SuperUsers)),
		defaultAllow: cfg.AllowEveryoneIfNoACLFound,
		generation:   generation,
		bindings:     make([]Binding, 0, len(set)),
	}
	for _, p := range cfg.SuperUsers {
		s.superUsers[p] = struct{}{}
	}
	for b := range set {
		s.bindings = append(s.bindings, b)
	}
	slices.SortFunc(s.bindings, func(x, y Binding) int { return compareBindings(&x, &y) })
	for i := range s.bindings {
		b := &s.bindings[i]
		if b.Pattern.Type < 0 || int(b.Pattern.Type) >= resourceTypeCount {
			continue // validated on the way in; never happens
		}
		ix := &s.types[b.Pattern.Type]
		p, _ := ParsePrincipal(b.Entry.Principal)
		e := entry{principalType: p.Type, principalName: p.Name, wildcardPrincipal: b.Entry.Principal == WildcardPrincipal,
			host: b.Entry.Host, op: b.Entry.Operation, allow: b.Entry.Permission == Allow}
		switch {
		case b.Pattern.PatternType == PatternLiteral && b.Pattern.Name == WildcardResource:
			ix.wildcard = append(ix.wildcard, e)
		case b.Pattern.PatternType == PatternLiteral:
			if ix.literal == nil {
				ix.literal = map[string][]entry{}
			}
			ix.literal[b.Pattern.Name] = append(ix.literal[b.Pattern.Name], e)
		case b.Pattern.PatternType == PatternPrefixed:
			if ix.prefixed == nil {
				ix.prefixed = map[string][]entry{}
			}
			if _, ok := ix.prefixed[b.Pattern.Name]; !ok {
				ix.prefixLens = append(ix.prefixLens, len(b.Pattern.Name))
			}
			ix.prefixed[b.Pattern.Name] = append(ix.prefixed[b.Pattern.Name], e)
		}
	}
	for i := range s.types {
		slices.Sort(s.types[i].prefixLens)
		s.types[i].prefixLens = slices.Compact(s.types[i].prefixLens)
	}
	return s
}

// verdict accumulates what the applicable entries said.
type verdict struct {
	applies bool // some binding applies to the resource (Kafka's hasResourceAcls)
	allowed bool
	denied  bool
}

func (s *snapshot) authorize(principal Principal, host string, op Operation, resourceType ResourceType, name string) bool {
	if _, ok := s.superUsers[principal]; ok {
		return true
	}
	if resourceType < 0 || int(resourceType) >= resourceTypeCount {
		return false
	}
	ix := &s.types[resourceType]
	var v verdict
	if list, ok := ix.literal[name]; ok {
		v.check(list, principal, host, op)
	}
	for _, n := range ix.prefixLens {
		if n > len(name) || v.denied {
			break
		}
		if list, ok := ix.prefixed[name[:n]]; ok {
			v.check(list, principal, host, op)
		}
	}
	if !v.denied {
		v.check(ix.wildcard, principal, host, op)
	}
	switch {
	case v.denied:
		return false
	case v.allowed:
		return true
	case !v.applies:
		return s.defaultAllow
	}
	return false
}

// check is Kafka's StandardAuthorizerData.findResult over a list of
// entries that apply to the resource.
func (v *verdict) check(list []entry, principal Principal, host string, op Operation) {
	for i := range list {
		e := &list[i]
		v.applies = true
		if !e.wildcardPrincipal && (e.principalType != principal.Type || e.principalName != principal.Name) {
			continue
		}
		if e.host != WildcardHost && e.host != host {
			continue
		}
		if !e.matchesOperation(op) {
			continue
		}
		if e.allow {
			v.allowed = true
		} else {
			v.denied = true
			return
		}
	}
}

// matchesOperation: ALL matches every operation; an ALLOW entry also
// matches the operations its own implies; a DENY entry matches only its
// own operation (a DENY READ does not deny DESCRIBE).
func (e *entry) matchesOperation(op Operation) bool {
	if e.op == OpAll || e.op == op {
		return true
	}
	if !e.allow {
		return false
	}
	switch op {
	case OpDescribe:
		return e.op == OpRead || e.op == OpWrite || e.op == OpDelete || e.op == OpAlter
	case OpDescribeConfigs:
		return e.op == OpAlterConfigs
	}
	return false
}

// authorizeByResourceType follows Kafka's default
// Authorizer.authorizeByResourceType step by step, including its first
// check of a resource literally named "hardcode" (which lets super users
// and allow.everyone.if.no.acl.found through).
func (s *snapshot) authorizeByResourceType(principal Principal, host string, op Operation, resourceType ResourceType) bool {
	if resourceType <= ResourceAny || int(resourceType) >= resourceTypeCount || op <= OpAny {
		return false // Kafka throws IllegalArgumentException
	}
	if s.authorize(principal, host, op, resourceType, "hardcode") {
		return true
	}
	ix := &s.types[resourceType]
	matches := func(e *entry) bool {
		if e.host != host && e.host != WildcardHost {
			return false
		}
		if !e.wildcardPrincipal && (e.principalType != principal.Type || e.principalName != principal.Name) {
			return false
		}
		return e.op == op || e.op == OpAll
	}
	for i := range ix.wildcard {
		if e := &ix.wildcard[i]; matches(e) && !e.allow {
			return false // a wildcard DENY denies every resource
		}
	}
	hasWildcardAllow := false
	for i := range ix.wildcard {
		if e := &ix.wildcard[i]; matches(e) && e.allow {
			hasWildcardAllow = true
		}
	}
	denyLiteral, denyPrefixed := map[string]bool{}, map[string]bool{}
	var allowLiteral, allowPrefixed []string
	for name, list := range ix.literal {
		for i := range list {
			if e := &list[i]; matches(e) {
				if e.allow {
					allowLiteral = append(allowLiteral, name)
				} else {
					denyLiteral[name] = true
				}
			}
		}
	}
	for name, list := range ix.prefixed {
		for i := range list {
			if e := &list[i]; matches(e) {
				if e.allow {
					allowPrefixed = append(allowPrefixed, name)
				} else {
					denyPrefixed[name] = true
				}
			}
		}
	}
	if hasWildcardAllow {
		return true
	}
	// An allowed name counts unless a DENY dominates it: the same LITERAL
	// name (for a LITERAL allow), or a PREFIXED deny on any prefix of it.
	dominated := func(name string) bool {
		for n := 1; n <= len(name); n++ {
			if denyPrefixed[name[:n]] {
				return true
			}
		}
		return false
	}
	for _, name := range allowLiteral {
		if !denyLiteral[name] && !dominated(name) {
			return true
		}
	}
	for _, name := range allowPrefixed {
		if !dominated(name) {
			return true
		}
	}
	return false
}
