package metadata

import (
	"errors"
	"reflect"
	"testing"
)

func securitySamples() []Record {
	return []Record{
		&UserScramCredentialRecord{Name: "bob", Mechanism: 2, Salt: []byte("salt"), StoredKey: []byte("stored-key"), ServerKey: []byte("server-key"), Iterations: 4096},
		&AccessControlEntryRecord{ID: UUID{9, 8, 7}, ResourceType: 2, ResourceName: "orders", PatternType: 3,
			Principal: "User:bob", Host: "*", Operation: 3, PermissionType: 3},
		&RemoveAccessControlEntryRecord{ID: UUID{9, 8, 7}},
		&RemoveUserScramCredentialRecord{Name: "bob", Mechanism: 2},
	}
}

func TestSecurityRecordsRoundTrip(t *testing.T) {
	for _, rec := range securitySamples() {
		b := Encode(nil, rec)
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%T: %v", rec, err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, rec)
		}
		for i := range b {
			if _, err := Decode(b[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%T prefix %d/%d: err %v", rec, i, len(b), err)
			}
		}
	}
}

func TestSecurityRecordsApplyAndSnapshot(t *testing.T) {
	recs := securitySamples()
	var im Image
	im, deltas, err := im.ApplyAll(recs[:2])
	if err != nil {
		t.Fatal(err)
	}
	if !deltas[0].ChangedScram || !deltas[1].ChangedACLs {
		t.Fatalf("deltas %+v", deltas)
	}
	if len(im.ScramCredentials()) != 1 || len(im.ACLs()) != 1 {
		t.Fatalf("image: %+v %+v", im.ScramCredentials(), im.ACLs())
	}
	// A snapshot rebuilds them.
	var re Image
	re, _, err = re.ApplyAll(im.Records())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(re.ScramCredentials(), im.ScramCredentials()) || !reflect.DeepEqual(re.ACLs(), im.ACLs()) {
		t.Fatalf("snapshot rebuilt %+v %+v", re.ScramCredentials(), re.ACLs())
	}
	// An ACL id added twice, and removals of what is not there, are refused.
	if _, _, err := im.Apply(recs[1]); err == nil {
		t.Fatal("ACL id added twice")
	}
	after, _, err := im.ApplyAll(recs[2:])
	if err != nil {
		t.Fatal(err)
	}
	if len(after.ScramCredentials())+len(after.ACLs()) != 0 || len(im.ACLs()) != 1 {
		t.Fatalf("after removals %+v %+v; the old image changed: %+v", after.ScramCredentials(), after.ACLs(), im.ACLs())
	}
	for _, rec := range recs[2:] {
		if _, _, err := after.Apply(rec); err == nil {
			t.Fatalf("%T of what is not there applied", rec)
		}
	}
}
