package controller

import (
	"crypto/sha512"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
)

func securityController() *Controller {
	var n byte
	return New(Config{ClusterID: "c", NewUUID: func() (u metadata.UUID) {
		n++
		u[15] = n
		return u
	}})
}

func applyAll(t *testing.T, img metadata.Image, recs []metadata.Record) metadata.Image {
	t.Helper()
	img, _, err := img.ApplyAll(recs)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestControllerACLs(t *testing.T) {
	c := securityController()
	var img metadata.Image
	creation := kmsg.CreateACLsRequestCreation{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "orders",
		ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral, Principal: "User:bob", Host: "*",
		Operation: kmsg.ACLOperationRead, PermissionType: kmsg.ACLPermissionTypeAllow}
	bad := creation
	bad.ResourceName = ""
	req := kmsg.NewPtrCreateACLsRequest()
	req.Creations = []kmsg.CreateACLsRequestCreation{creation, creation, bad}
	resp, recs := c.CreateACLs(img, req)
	if resp.Results[0].ErrorCode != 0 || resp.Results[1].ErrorCode != 0 || resp.Results[2].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("results %+v", resp.Results)
	}
	if len(recs) != 1 {
		t.Fatalf("a binding given twice wrote %d records", len(recs))
	}
	img = applyAll(t, img, recs)
	// Already present: success, no record.
	if resp, recs = c.CreateACLs(img, req); resp.Results[0].ErrorCode != 0 || len(recs) != 0 {
		t.Fatalf("again: %+v %d records", resp.Results, len(recs))
	}
	del := kmsg.NewPtrDeleteACLsRequest()
	del.Filters = []kmsg.DeleteACLsRequestFilter{{ResourceType: kmsg.ACLResourceTypeAny, ResourcePatternType: kmsg.ACLResourcePatternTypeAny,
		Principal: kmsg.StringPtr("User:bob"), Operation: kmsg.ACLOperationAny, PermissionType: kmsg.ACLPermissionTypeAny}}
	dresp, drecs := c.DeleteACLs(img, del)
	if dresp.Results[0].ErrorCode != 0 || len(dresp.Results[0].MatchingACLs) != 1 || len(drecs) != 1 {
		t.Fatalf("delete: %+v, %d records", dresp.Results, len(drecs))
	}
	if img = applyAll(t, img, drecs); len(img.ACLs()) != 0 {
		t.Fatalf("left %+v", img.ACLs())
	}
}

func TestControllerSCRAM(t *testing.T) {
	c := securityController()
	var img metadata.Image
	salted := make([]byte, sha512.Size)
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		{Name: "bob", Mechanism: 2, Iterations: 4096, Salt: []byte("salt"), SaltedPassword: salted},
		{Name: "eve", Mechanism: 2, Iterations: 10, Salt: []byte("salt"), SaltedPassword: salted},
	}
	req.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "carol", Mechanism: 1}}
	resp, recs := c.AlterUserSCRAMCredentials(img, req)
	want := map[string]int16{"bob": 0, "eve": kerr.UnacceptableCredential.Code, "carol": kerr.ResourceNotFound.Code}
	for _, r := range resp.Results {
		if r.ErrorCode != want[r.User] {
			t.Fatalf("%s: %s", r.User, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	img = applyAll(t, img, recs)
	if creds := img.ScramCredentials(); len(creds) != 1 || creds[0].Name != "bob" || creds[0].Iterations != 4096 {
		t.Fatalf("image %+v", creds)
	}
	req = kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "bob", Mechanism: 2}}
	if _, recs = c.AlterUserSCRAMCredentials(img, req); len(recs) != 1 {
		t.Fatalf("delete: %d records", len(recs))
	}
	if img = applyAll(t, img, recs); len(img.ScramCredentials()) != 0 {
		t.Fatalf("left %+v", img.ScramCredentials())
	}
}
