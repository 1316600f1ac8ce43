package store

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/sasl"
)

// Alteration is what an AlterUserScramCredentials request does to a
// credential set once validated: the per-user results (in request order,
// each user once) and the changes to apply for the users without an error.
type Alteration struct {
	Results   []kmsg.AlterUserSCRAMCredentialsResponseResult
	Deletions []Key
	Upserts   map[Key]sasl.Credential
}

// PlanAlter validates r against current as Kafka's ScramControlManager
// does (the messages are Kafka's) and returns the alteration; refused, if
// not empty, refuses every user with that code and message (authorization,
// a node that does not serve credentials). It is pure: the single node
// applies the plan to its Credentials, a cluster's controller writes it as
// metadata records.
//
//   - unknown mechanism: UNSUPPORTED_SASL_MECHANISM "Unknown SCRAM mechanism";
//   - empty user name: UNACCEPTABLE_CREDENTIAL "Username must not be empty";
//   - iterations outside the mechanism's bounds: UNACCEPTABLE_CREDENTIAL;
//   - deleting a credential that does not exist: RESOURCE_NOT_FOUND;
//   - the same (user, mechanism) twice: DUPLICATE_RESOURCE.
//
// A user with any failed alteration has none applied.
func PlanAlter(current map[Key]sasl.Credential, r *kmsg.AlterUserSCRAMCredentialsRequest, refusedCode int16, refusedMsg string) Alteration {
	var users []string
	userErr := map[string]kmsg.AlterUserSCRAMCredentialsResponseResult{}
	seen := map[Key]bool{}
	note := func(user string) {
		if _, ok := userErr[user]; !ok {
			users = append(users, user)
			userErr[user] = kmsg.AlterUserSCRAMCredentialsResponseResult{User: user}
		}
	}
	fail := func(user string, code int16, msg string) {
		if res := userErr[user]; res.ErrorCode == 0 {
			m := msg
			res.ErrorCode, res.ErrorMessage = code, &m
			userErr[user] = res
		}
	}
	for _, d := range r.Deletions {
		note(d.Name)
	}
	for _, u := range r.Upsertions {
		note(u.Name)
	}
	if refusedCode != 0 {
		for _, u := range users {
			fail(u, refusedCode, refusedMsg)
		}
	}
	validate := func(name string, code int8) (Key, *sasl.ScramMechanism, bool) {
		m := MechanismByCode(code)
		k := Key{User: name, Mechanism: code}
		switch {
		case m == nil:
			fail(name, kerr.UnsupportedSaslMechanism.Code, "Unknown SCRAM mechanism")
		case name == "":
			fail(name, kerr.UnacceptableCredential.Code, "Username must not be empty")
		case seen[k]:
			fail(name, kerr.DuplicateResource.Code, "A user credential cannot be altered twice in the same request")
		default:
			seen[k] = true
			return k, m, true
		}
		return k, m, false
	}
	a := Alteration{Upserts: map[Key]sasl.Credential{}}
	for _, d := range r.Deletions {
		k, _, ok := validate(d.Name, d.Mechanism)
		if !ok {
			continue
		}
		if _, exists := current[k]; !exists {
			fail(d.Name, kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist")
			continue
		}
		a.Deletions = append(a.Deletions, k)
	}
	for _, u := range r.Upsertions {
		k, m, ok := validate(u.Name, u.Mechanism)
		if !ok {
			continue
		}
		switch {
		case int(u.Iterations) < m.MinIterations:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Too few iterations")
		case int(u.Iterations) > m.MaxIterations:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Too many iterations")
		case len(u.Salt) == 0 || len(u.Salt) > saltMaxLen || len(u.SaltedPassword) == 0:
			fail(u.Name, kerr.UnacceptableCredential.Code, "Salt and salted password must not be empty (salt at most 1024 bytes)")
		default:
			a.Upserts[k] = m.CredentialFromSaltedPassword(u.SaltedPassword, u.Salt, int(u.Iterations))
		}
	}
	a.Deletions = slices.DeleteFunc(a.Deletions, func(k Key) bool { return userErr[k.User].ErrorCode != 0 })
	for k := range a.Upserts {
		if userErr[k.User].ErrorCode != 0 {
			delete(a.Upserts, k)
		}
	}
	for _, u := range users {
		a.Results = append(a.Results, userErr[u])
	}
	return a
}

// Replace makes set the credential set (a cluster node following the
// metadata image). set must not be modified afterwards.
func (c *Credentials) Replace(set map[Key]sasl.Credential) {
	c.mu.Lock()
	c.cur.Store(&set)
	c.mu.Unlock()
}
