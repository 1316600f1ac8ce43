package controller

// SCRAM credentials and ACLs in a cluster (issue 19): brokers forward
// AlterUserScramCredentials, CreateAcls and DeleteAcls here (after
// authorizing them); the controller validates them against the image
// exactly as a single node validates them against its local sets (the
// same code: store.PlanAlter, acl.Authorizer) and writes Kafka's records:
// UserScramCredentialRecord / RemoveUserScramCredentialRecord and
// AccessControlEntryRecord / RemoveAccessControlEntryRecord.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/auth/sasl"
	"github.com/ringbroker/ringbroker/auth/store"
	"github.com/ringbroker/ringbroker/metadata"
)

// ScramSet is the image's SCRAM credentials as auth/store's set.
func ScramSet(img metadata.Image) map[store.Key]sasl.Credential {
	recs := img.ScramCredentials()
	set := make(map[store.Key]sasl.Credential, len(recs))
	for _, r := range recs {
		set[store.Key{User: r.Name, Mechanism: r.Mechanism}] = sasl.Credential{Salt: r.Salt, Iterations: int(r.Iterations),
			StoredKey: r.StoredKey, ServerKey: r.ServerKey}
	}
	return set
}

// ACLBinding is the binding an ACL record holds.
func ACLBinding(r metadata.AccessControlEntryRecord) acl.Binding {
	return acl.Binding{
		Pattern: acl.ResourcePattern{Type: acl.ResourceTypeFromCode(r.ResourceType), Name: r.ResourceName,
			PatternType: acl.PatternTypeFromCode(r.PatternType)},
		Entry: acl.Entry{Principal: r.Principal, Host: r.Host, Operation: acl.OperationFromCode(r.Operation),
			Permission: acl.PermissionFromCode(r.PermissionType)},
	}
}

// AlterUserSCRAMCredentials answers AlterUserScramCredentials (key 51).
func (c *Controller) AlterUserSCRAMCredentials(img metadata.Image, req *kmsg.AlterUserSCRAMCredentialsRequest) (*kmsg.AlterUserSCRAMCredentialsResponse, []metadata.Record) {
	plan := store.PlanAlter(ScramSet(img), req, 0, "")
	resp := kmsg.NewPtrAlterUserSCRAMCredentialsResponse()
	resp.Version, resp.Results = req.Version, plan.Results
	var recs []metadata.Record
	for _, k := range plan.Deletions {
		recs = append(recs, &metadata.RemoveUserScramCredentialRecord{Name: k.User, Mechanism: k.Mechanism})
	}
	for _, u := range req.Upsertions { // request order, deterministic
		k := store.Key{User: u.Name, Mechanism: u.Mechanism}
		if cred, ok := plan.Upserts[k]; ok {
			recs = append(recs, &metadata.UserScramCredentialRecord{Name: k.User, Mechanism: k.Mechanism, Salt: cred.Salt,
				StoredKey: cred.StoredKey, ServerKey: cred.ServerKey, Iterations: int32(cred.Iterations)})
			delete(plan.Upserts, k)
		}
	}
	return resp, recs
}

// imageAuthorizer is an authorizer holding the image's ACLs (to run
// Create and Delete against) and the id of each binding.
func imageAuthorizer(img metadata.Image) (*acl.Authorizer, map[acl.Binding]metadata.UUID, error) {
	recs := img.ACLs()
	ids := make(map[acl.Binding]metadata.UUID, len(recs))
	bindings := make([]acl.Binding, 0, len(recs))
	for _, r := range recs {
		b := ACLBinding(r)
		ids[b] = r.ID
		bindings = append(bindings, b)
	}
	a := acl.New(acl.Config{})
	return a, ids, a.Load(bindings)
}

// CreateACLs answers CreateAcls (key 30): each binding validated as
// auth/acl does (Kafka's messages); a binding already present succeeds
// and writes nothing.
func (c *Controller) CreateACLs(img metadata.Image, req *kmsg.CreateACLsRequest) (*kmsg.CreateACLsResponse, []metadata.Record) {
	resp := kmsg.NewPtrCreateACLsResponse()
	resp.Version = req.Version
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	a, ids, err := imageAuthorizer(img)
	if err != nil {
		for i := range resp.Results {
			resp.Results[i] = kmsg.CreateACLsResponseResult{ErrorCode: kerr.UnknownServerError.Code, ErrorMessage: errMsg("%v", err)}
		}
		return resp, nil
	}
	bindings := make([]acl.Binding, len(req.Creations))
	for i, cr := range req.Creations {
		bindings[i] = acl.Binding{
			Pattern: acl.ResourcePattern{Type: acl.ResourceTypeFromCode(int8(cr.ResourceType)), Name: cr.ResourceName,
				PatternType: acl.PatternTypeFromCode(int8(cr.ResourcePatternType))},
			Entry: acl.Entry{Principal: cr.Principal, Host: cr.Host, Operation: acl.OperationFromCode(int8(cr.Operation)),
				Permission: acl.PermissionFromCode(int8(cr.PermissionType))},
		}
	}
	results := a.Create(bindings)
	var recs []metadata.Record
	added := map[acl.Binding]bool{}
	for i, res := range results {
		if res.Err != nil {
			resp.Results[i] = kmsg.CreateACLsResponseResult{ErrorCode: res.Err.Code, ErrorMessage: errMsg("%s", res.Message)}
			continue
		}
		b := bindings[i]
		if _, exists := ids[b]; exists || added[b] {
			continue
		}
		added[b] = true
		recs = append(recs, &metadata.AccessControlEntryRecord{ID: c.newACLID(ids), ResourceType: int8(b.Pattern.Type),
			ResourceName: b.Pattern.Name, PatternType: int8(b.Pattern.PatternType), Principal: b.Entry.Principal,
			Host: b.Entry.Host, Operation: int8(b.Entry.Operation), PermissionType: int8(b.Entry.Permission)})
	}
	return resp, recs
}

// DeleteACLs answers DeleteAcls (key 31): each filter's matching bindings
// are removed and listed.
func (c *Controller) DeleteACLs(img metadata.Image, req *kmsg.DeleteACLsRequest) (*kmsg.DeleteACLsResponse, []metadata.Record) {
	filters := make([]acl.Filter, len(req.Filters))
	for i, f := range req.Filters {
		filters[i] = acl.FilterFromWire(int8(f.ResourceType), f.ResourceName, int8(f.ResourcePatternType), f.Principal, f.Host,
			int8(f.Operation), int8(f.PermissionType))
	}
	resp := kmsg.NewPtrDeleteACLsResponse()
	resp.Version = req.Version
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(filters))
	a, ids, err := imageAuthorizer(img)
	if err != nil {
		for i := range resp.Results {
			resp.Results[i] = kmsg.DeleteACLsResponseResult{ErrorCode: kerr.UnknownServerError.Code, ErrorMessage: errMsg("%v", err)}
		}
		return resp, nil
	}
	var recs []metadata.Record
	removed := map[metadata.UUID]bool{}
	for i, res := range a.Delete(filters) {
		out := &resp.Results[i]
		if res.Err != nil {
			out.ErrorCode, out.ErrorMessage = res.Err.Code, errMsg("%s", res.Message)
			continue
		}
		for _, bd := range res.Deleted {
			out.MatchingACLs = append(out.MatchingACLs, kmsg.DeleteACLsResponseResultMatchingACL{
				ResourceType: kmsg.ACLResourceType(bd.Pattern.Type), ResourceName: bd.Pattern.Name,
				ResourcePatternType: kmsg.ACLResourcePatternType(bd.Pattern.PatternType),
				Principal:           bd.Entry.Principal, Host: bd.Entry.Host,
				Operation: kmsg.ACLOperation(bd.Entry.Operation), PermissionType: kmsg.ACLPermissionType(bd.Entry.Permission)})
			if id, ok := ids[bd]; ok && !removed[id] {
				removed[id] = true
				recs = append(recs, &metadata.RemoveAccessControlEntryRecord{ID: id})
			}
		}
	}
	return resp, recs
}

// newACLID is a fresh ACL id: not zero, not one of ids.
func (c *Controller) newACLID(ids map[acl.Binding]metadata.UUID) metadata.UUID {
	for {
		id := c.cfg.NewUUID()
		taken := id == metadata.UUID{}
		for _, have := range ids {
			taken = taken || have == id
		}
		if !taken {
			return id
		}
	}
}
