package acl

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
)

// DefaultMaxBindings bounds the ACL set when Config.MaxBindings is zero.
// Kafka has no bound; a bound keeps a CreateAcls storm from exhausting
// memory, and every change rebuilds the snapshot in time linear in it.
const DefaultMaxBindings = 100_000

// Config is the authorizer's static configuration, under Kafka's keys.
type Config struct {
	// SuperUsers is super.users: principals ("User:admin") allowed
	// everything whatever the ACLs say. ParseSuperUsers reads Kafka's
	// semicolon-separated form.
	SuperUsers []Principal
	// AllowEveryoneIfNoACLFound is allow.everyone.if.no.acl.found
	// (default false): the answer when no binding at all applies to the
	// resource (not when bindings exist for it but none matches the
	// principal, host or operation: that is a denial).
	AllowEveryoneIfNoACLFound bool
	// MaxBindings bounds the number of bindings held; DefaultMaxBindings
	// when zero.
	MaxBindings int
}

// ParseSuperUsers reads super.users as Kafka's StandardAuthorizer does:
// entries separated by ';', trimmed, empty ones skipped, each a
// "Type:Name" principal.
func ParseSuperUsers(s string) ([]Principal, error) {
	var out []Principal
	for _, v := range strings.Split(s, ";") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		p, err := ParsePrincipal(v)
		if err != nil {
			return nil, fmt.Errorf("super.users: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Result is the outcome of one binding in Create: Err nil on success,
// otherwise the Kafka error code and the message Kafka sends with it.
type Result struct {
	Err     *kerr.Error
	Message string
}

// DeleteResult is the outcome of one filter in Delete: the bindings it
// removed, or an error.
type DeleteResult struct {
	Err     *kerr.Error
	Message string
	Deleted []Binding
}

// Authorizer holds the ACL set and answers authorization questions.
//
// Concurrency: Authorize, AuthorizeByResourceType, Describe, Bindings and
// Generation may be called from any goroutine at any time; they read an
// immutable snapshot through an atomic pointer and take no lock. Create,
// Delete and Load serialise on mu, build a new snapshot from the binding
// set (copy-on-write: a reader keeps the snapshot it loaded) and publish
// it with one atomic store, so a reader sees every change of a call or
// none of it.
type Authorizer struct {
	cfg Config

	mu sync.Mutex // serialises writers; readers never take it
	// set is the current binding set, owned by writers under mu.
	set  map[Binding]struct{}
	snap atomic.Pointer[snapshot]
}

// New returns an authorizer with no bindings.
func New(cfg Config) *Authorizer {
	if cfg.MaxBindings <= 0 {
		cfg.MaxBindings = DefaultMaxBindings
	}
	a := &Authorizer{cfg: cfg, set: map[Binding]struct{}{}}
	a.publish(0)
	return a
}

// Generation is a number that changes whenever the binding set changes:
// a per-connection cache of authorization answers stays valid while it
// does not.
func (a *Authorizer) Generation() uint64 { return a.snap.Load().generation }

// Len is the number of bindings held.
func (a *Authorizer) Len() int { return len(a.snap.Load().bindings) }

// Bindings returns every binding, sorted (the order Encode writes).
func (a *Authorizer) Bindings() []Binding {
	return slices.Clone(a.snap.Load().bindings)
}

// Authorize answers whether principal, connected from host (the client's
// IP address as Kafka's InetAddress.getHostAddress prints it), may perform
// op on the LITERAL resource (resourceType, name). It follows Kafka's
// StandardAuthorizer:
//
//   - a super user is allowed everything;
//   - the bindings that apply are the LITERAL one for name, the LITERAL
//     wildcard "*" and every PREFIXED one whose name prefixes name;
//   - of those, a binding matches when its principal is the principal or
//     User:*, its host is host or "*", and its operation is op or ALL, or,
//     for an ALLOW binding only, implies op (READ, WRITE, DELETE, ALTER
//     imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS);
//   - a matching DENY wins; otherwise a matching ALLOW allows; otherwise,
//     if no binding applies to the resource at all,
//     allow.everyone.if.no.acl.found decides; otherwise it is denied.
//
// It allocates nothing and takes no lock.
func (a *Authorizer) Authorize(principal Principal, host string, op Operation, resourceType ResourceType, name string) bool {
	return a.snap.Load().authorize(principal, host, op, resourceType, name)
}

// AuthorizeByResourceType is Kafka's Authorizer.authorizeByResourceType
// (KIP-679): whether principal may perform op on at least one resource of
// the type. A handler needs it for InitProducerId without a transactional
// id, which Kafka allows with IDEMPOTENT_WRITE on the cluster OR WRITE on
// any topic (see AuthorizeIdempotentWrite). Not on a hot path: it
// allocates.
func (a *Authorizer) AuthorizeByResourceType(principal Principal, host string, op Operation, resourceType ResourceType) bool {
	return a.snap.Load().authorizeByResourceType(principal, host, op, resourceType)
}

// AuthorizeIdempotentWrite is Kafka's rule for an idempotent producer's
// InitProducerId (KafkaApis.handleInitProducerIdRequest, no transactional
// id): IDEMPOTENT_WRITE on the cluster, or WRITE on any topic. Refusal is
// CLUSTER_AUTHORIZATION_FAILED. Produce itself checks WRITE on each topic
// only.
func (a *Authorizer) AuthorizeIdempotentWrite(principal Principal, host string) bool {
	s := a.snap.Load()
	return s.authorize(principal, host, OpIdempotentWrite, ResourceCluster, ClusterName) ||
		s.authorizeByResourceType(principal, host, OpWrite, ResourceTopic)
}

// Create adds bindings as CreateAcls does, and returns one result per
// binding in order. Validation is Kafka's, in Kafka's order (the broker's
// AclApis checks, then the controller's validateNewAcl); every failure is
// INVALID_REQUEST with Kafka's message. A binding already present succeeds
// without being added twice. Deliberate differences from Kafka: a
// principal without a colon is refused (Kafka accepts it and then fails
// every authorization on that resource), and once MaxBindings are held a
// new binding fails with POLICY_VIOLATION.
func (a *Authorizer) Create(bindings []Binding) []Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	results := make([]Result, len(bindings))
	added := false
	for i := range bindings {
		b := &bindings[i]
		if msg := validateNew(b); msg != "" {
			results[i] = Result{Err: kerr.InvalidRequest, Message: msg}
			continue
		}
		if _, ok := a.set[*b]; ok {
			continue
		}
		if len(a.set) >= a.cfg.MaxBindings {
			results[i] = Result{Err: kerr.PolicyViolation,
				Message: fmt.Sprintf("the authorizer holds its maximum of %d ACL bindings", a.cfg.MaxBindings)}
			continue
		}
		a.set[*b] = struct{}{}
		added = true
	}
	if added {
		a.publish(a.snap.Load().generation + 1)
	}
	return results
}

// validateNew returns Kafka's message for an invalid new binding, or "".
func validateNew(b *Binding) string {
	// kafka.server.AclApis.handleCreateAcls.
	if b.Pattern.Type == ResourceCluster && b.Pattern.Name != ClusterName {
		return "The only valid name for the CLUSTER resource is " + ClusterName
	}
	if b.Pattern.Name == "" {
		return "Invalid empty resource name"
	}
	// AclControlManager.validateNewAcl.
	switch b.Pattern.Type {
	case ResourceTopic, ResourceGroup, ResourceCluster, ResourceTransactionalID, ResourceDelegationToken, ResourceUser:
	default:
		return "Invalid resourceType " + b.Pattern.Type.String()
	}
	switch b.Pattern.PatternType {
	case PatternLiteral, PatternPrefixed:
	default:
		return "Invalid patternType " + b.Pattern.PatternType.String()
	}
	if b.Entry.Operation <= OpAny || int(b.Entry.Operation) >= len(operationNames) {
		return "Invalid operation " + b.Entry.Operation.String()
	}
	switch b.Entry.Permission {
	case Allow, Deny:
	default:
		return "Invalid permissionType " + b.Entry.Permission.String()
	}
	// Ours: Kafka would store it and fail later.
	if _, err := ParsePrincipal(b.Entry.Principal); err != nil {
		return "Invalid principal: " + err.Error()
	}
	if b.Entry.Host == "" {
		return "Invalid empty host"
	}
	return ""
}

// Describe returns the bindings the filter matches, sorted, as
// DescribeAcls does; a filter with an UNKNOWN field is INVALID_REQUEST.
func (a *Authorizer) Describe(f Filter) ([]Binding, *kerr.Error, string) {
	if f.Unknown() {
		return nil, kerr.InvalidRequest, "The filter contains UNKNOWN elements"
	}
	var out []Binding
	for _, b := range a.snap.Load().bindings {
		if f.Matches(&b) {
			out = append(out, b)
		}
	}
	return out, nil, ""
}

// Delete removes, as DeleteAcls does, every binding each filter matches,
// and returns per filter the bindings it matched. Every filter is applied
// to the set as it was before the call (Kafka's AclControlManager), so a
// binding two filters match is reported by both and removed once. A
// filter with an UNKNOWN field fails alone with INVALID_REQUEST.
func (a *Authorizer) Delete(filters []Filter) []DeleteResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	before := a.snap.Load().bindings
	results := make([]DeleteResult, len(filters))
	removed := false
	for i := range filters {
		f := &filters[i]
		if f.ResourceType == ResourceUnknown || f.PatternType == PatternUnknown {
			results[i] = DeleteResult{Err: kerr.InvalidRequest, Message: "Unknown patternFilter."}
			continue
		}
		if f.Operation == OpUnknown || f.Permission == PermissionUnknown {
			results[i] = DeleteResult{Err: kerr.InvalidRequest, Message: "Unknown entryFilter."}
			continue
		}
		for _, b := range before {
			if f.Matches(&b) {
				results[i].Deleted = append(results[i].Deleted, b)
				if _, ok := a.set[b]; ok {
					delete(a.set, b)
					removed = true
				}
			}
		}
	}
	if removed {
		a.publish(a.snap.Load().generation + 1)
	}
	return results
}

// Load replaces the whole binding set (from the durable store at startup,
// or a metadata image later). Every binding is validated as Create does;
// the first invalid one fails the load and nothing changes.
func (a *Authorizer) Load(bindings []Binding) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	set := make(map[Binding]struct{}, len(bindings))
	for i := range bindings {
		if msg := validateNew(&bindings[i]); msg != "" {
			return fmt.Errorf("acl: load: binding %s: %s", bindings[i], msg)
		}
		set[bindings[i]] = struct{}{}
	}
	if len(set) > a.cfg.MaxBindings {
		return fmt.Errorf("acl: load: %d bindings, more than the maximum of %d", len(set), a.cfg.MaxBindings)
	}
	a.set = set
	a.publish(a.snap.Load().generation + 1)
	return nil
}

// publish builds a snapshot of a.set and makes it current.
// REQUIRES: a.mu held, or a not yet shared (New).
func (a *Authorizer) publish(generation uint64) {
	a.snap.Store(buildSnapshot(a.set, &a.cfg, generation))
}
