package acl

import (
	"fmt"
	"strings"
)

// ResourceType is Kafka's resource type, with Kafka's wire codes
// (org.apache.kafka.common.resource.ResourceType).
type ResourceType int8

// Resource types. Unknown and Any are filter-only values: a binding never
// carries them.
const (
	ResourceUnknown         ResourceType = 0
	ResourceAny             ResourceType = 1
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

// resourceTypeCount bounds the per-type index in a snapshot.
const resourceTypeCount = 8

var resourceTypeNames = [...]string{"UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER"}

func (t ResourceType) String() string {
	if t >= 0 && int(t) < len(resourceTypeNames) {
		return resourceTypeNames[t]
	}
	return "UNKNOWN"
}

// ResourceTypeFromCode is Kafka's fromCode: a code it does not know is
// ResourceUnknown.
func ResourceTypeFromCode(code int8) ResourceType {
	if code < 0 || int(code) >= len(resourceTypeNames) {
		return ResourceUnknown
	}
	return ResourceType(code)
}

// ParseResourceType reads a name as Kafka prints it (case-insensitive).
func ParseResourceType(s string) (ResourceType, bool) {
	for i, n := range resourceTypeNames {
		if strings.EqualFold(s, n) {
			return ResourceType(i), true
		}
	}
	return ResourceUnknown, false
}

// PatternType is Kafka's resource pattern type.
type PatternType int8

// Pattern types. Literal and Prefixed are the only ones a binding carries;
// Any and Match are filter values, Unknown is what an unknown code decodes to.
const (
	PatternUnknown  PatternType = 0
	PatternAny      PatternType = 1
	PatternMatch    PatternType = 2
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

var patternTypeNames = [...]string{"UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"}

func (p PatternType) String() string {
	if p >= 0 && int(p) < len(patternTypeNames) {
		return patternTypeNames[p]
	}
	return "UNKNOWN"
}

// PatternTypeFromCode is Kafka's fromCode.
func PatternTypeFromCode(code int8) PatternType {
	if code < 0 || int(code) >= len(patternTypeNames) {
		return PatternUnknown
	}
	return PatternType(code)
}

// ParsePatternType reads a name as Kafka prints it (case-insensitive).
func ParsePatternType(s string) (PatternType, bool) {
	for i, n := range patternTypeNames {
		if strings.EqualFold(s, n) {
			return PatternType(i), true
		}
	}
	return PatternUnknown, false
}

// Operation is Kafka's AclOperation, with Kafka's wire codes.
type Operation int8

// Operations. Unknown and Any are filter-only.
const (
	OpUnknown         Operation = 0
	OpAny             Operation = 1
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
	OpCreateTokens    Operation = 13
	OpDescribeTokens  Operation = 14
)

var operationNames = [...]string{"UNKNOWN", "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
	"CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CREATE_TOKENS", "DESCRIBE_TOKENS"}

func (o Operation) String() string {
	if o >= 0 && int(o) < len(operationNames) {
		return operationNames[o]
	}
	return "UNKNOWN"
}

// OperationFromCode is Kafka's fromCode.
func OperationFromCode(code int8) Operation {
	if code < 0 || int(code) >= len(operationNames) {
		return OpUnknown
	}
	return Operation(code)
}

// ParseOperation reads a name as Kafka prints it (case-insensitive).
func ParseOperation(s string) (Operation, bool) {
	for i, n := range operationNames {
		if strings.EqualFold(s, n) {
			return Operation(i), true
		}
	}
	return OpUnknown, false
}

// Permission is Kafka's AclPermissionType.
type Permission int8

// Permissions. Unknown and Any are filter-only.
const (
	PermissionUnknown Permission = 0
	PermissionAny     Permission = 1
	Deny              Permission = 2
	Allow             Permission = 3
)

var permissionNames = [...]string{"UNKNOWN", "ANY", "DENY", "ALLOW"}

func (p Permission) String() string {
	if p >= 0 && int(p) < len(permissionNames) {
		return permissionNames[p]
	}
	return "UNKNOWN"
}

// PermissionFromCode is Kafka's fromCode.
func PermissionFromCode(code int8) Permission {
	if code < 0 || int(code) >= len(permissionNames) {
		return PermissionUnknown
	}
	return Permission(code)
}

// ParsePermission reads a name as Kafka prints it (case-insensitive).
func ParsePermission(s string) (Permission, bool) {
	for i, n := range permissionNames {
		if strings.EqualFold(s, n) {
			return Permission(i), true
		}
	}
	return PermissionUnknown, false
}

// Principal is a Kafka principal: a type ("User" for every SASL and TLS
// principal the broker builds) and a name.
type Principal struct {
	Type string
	Name string
}

// User is the principal User:name.
func User(name string) Principal { return Principal{Type: "User", Name: name} }

// String is Kafka's KafkaPrincipal.toString: "Type:Name".
func (p Principal) String() string { return p.Type + ":" + p.Name }

// ParsePrincipal is Kafka's SecurityUtils.parseKafkaPrincipal: the type is
// everything before the first colon, the name everything after it.
func ParsePrincipal(s string) (Principal, error) {
	i := strings.IndexByte(s, ':')
	if s == "" || i < 0 {
		return Principal{}, fmt.Errorf("expected a string in format principalType:principalName but got %s", s)
	}
	return Principal{Type: s[:i], Name: s[i+1:]}, nil
}

// Wildcards, as Kafka spells them.
const (
	// WildcardResource as a LITERAL resource name matches every resource
	// of its type.
	WildcardResource = "*"
	// WildcardHost in a binding matches every client host.
	WildcardHost = "*"
	// WildcardPrincipal in a binding matches every principal (of any type:
	// Kafka's matchingPrincipals adds User:* whatever the session's type).
	WildcardPrincipal = "User:*"
	// ClusterName is the only name a CLUSTER resource has.
	ClusterName = "kafka-cluster"
)

// ResourcePattern names the resources a binding applies to.
type ResourcePattern struct {
	Type        ResourceType
	Name        string
	PatternType PatternType
}

// Entry is Kafka's AccessControlEntry: who, from where, what, and whether
// it is allowed or denied. Principal is the "Type:Name" string as Kafka
// stores it.
type Entry struct {
	Principal  string
	Host       string
	Operation  Operation
	Permission Permission
}

// Binding is Kafka's AclBinding: a resource pattern and an entry.
type Binding struct {
	Pattern ResourcePattern
	Entry   Entry
}

// String prints a binding in one line, in the order of kafka-acls.sh's
// output, for logs and tests.
func (b Binding) String() string {
	return fmt.Sprintf("%s:%s:%s %s@%s %s %s", b.Pattern.Type, b.Pattern.PatternType, b.Pattern.Name,
		b.Entry.Principal, b.Entry.Host, b.Entry.Permission, b.Entry.Operation)
}

// compareBindings orders bindings for Describe results and for the
// encoded form: resource type, name, pattern type, principal, host,
// operation, permission.
func compareBindings(a, b *Binding) int {
	if c := cmpInt(int(a.Pattern.Type), int(b.Pattern.Type)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Pattern.Name, b.Pattern.Name); c != 0 {
		return c
	}
	if c := cmpInt(int(a.Pattern.PatternType), int(b.Pattern.PatternType)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Entry.Principal, b.Entry.Principal); c != 0 {
		return c
	}
	if c := strings.Compare(a.Entry.Host, b.Entry.Host); c != 0 {
		return c
	}
	if c := cmpInt(int(a.Entry.Operation), int(b.Entry.Operation)); c != 0 {
		return c
	}
	return cmpInt(int(a.Entry.Permission), int(b.Entry.Permission))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
