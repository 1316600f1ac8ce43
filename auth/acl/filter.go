package acl

import "strings"

// Filter is Kafka's AclBindingFilter (a ResourcePatternFilter and an
// AccessControlEntryFilter), as DescribeAcls and DeleteAcls carry it. A nil
// Name, Principal or Host matches any value; ResourceAny, PatternAny,
// OpAny and PermissionAny match any value of their field.
//
// PatternMatch with a Name matches every binding that would apply to the
// resource of that name: the LITERAL binding of that exact name, the
// LITERAL wildcard "*" and every PREFIXED binding whose name is a prefix
// of Name. PatternMatch without a Name matches every pattern type.
type Filter struct {
	ResourceType ResourceType
	Name         *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// MatchAll is the filter that matches every binding.
var MatchAll = Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}

// Unknown reports whether a field of the filter is UNKNOWN (Kafka's
// AclBindingFilter.isUnknown): such a filter is refused with
// INVALID_REQUEST.
func (f *Filter) Unknown() bool {
	return f.ResourceType == ResourceUnknown || f.PatternType == PatternUnknown ||
		f.Operation == OpUnknown || f.Permission == PermissionUnknown
}

// Matches is Kafka's AclBindingFilter.matches.
func (f *Filter) Matches(b *Binding) bool {
	return f.matchesPattern(&b.Pattern) && f.matchesEntry(&b.Entry)
}

// matchesPattern is ResourcePatternFilter.matches.
func (f *Filter) matchesPattern(p *ResourcePattern) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != p.Type {
		return false
	}
	if f.PatternType != PatternAny && f.PatternType != PatternMatch && f.PatternType != p.PatternType {
		return false
	}
	if f.Name == nil {
		return true
	}
	name := *f.Name
	if f.PatternType == PatternAny || f.PatternType == p.PatternType {
		return name == p.Name
	}
	// PatternMatch from here on.
	switch p.PatternType {
	case PatternLiteral:
		return name == p.Name || p.Name == WildcardResource
	case PatternPrefixed:
		return strings.HasPrefix(name, p.Name)
	}
	return false
}

// matchesEntry is AccessControlEntryFilter.matches: principal and host
// compare as strings (a filter for "User:*" finds the wildcard bindings,
// not every binding).
func (f *Filter) matchesEntry(e *Entry) bool {
	if f.Principal != nil && *f.Principal != e.Principal {
		return false
	}
	if f.Host != nil && *f.Host != e.Host {
		return false
	}
	if f.Operation != OpAny && f.Operation != e.Operation {
		return false
	}
	return f.Permission == PermissionAny || f.Permission == e.Permission
}

// FilterFromWire is the filter of a DescribeAcls or DeleteAcls request's
// codes and strings (copied: the request's strings may alias a frame).
func FilterFromWire(resourceType int8, name *string, patternType int8, principal, host *string, op, perm int8) Filter {
	clone := func(s *string) *string {
		if s == nil {
			return nil
		}
		c := string([]byte(*s))
		return &c
	}
	return Filter{ResourceType: ResourceTypeFromCode(resourceType), Name: clone(name),
		PatternType: PatternTypeFromCode(patternType), Principal: clone(principal), Host: clone(host),
		Operation: OperationFromCode(op), Permission: PermissionFromCode(perm)}
}
