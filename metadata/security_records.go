package metadata

// Security records (issue 19): SCRAM credentials and ACLs live in the
// metadata log in a cluster, shaped as Kafka's KRaft records, so a user or
// an ACL created through any node is enforced by every node and survives
// restarts and snapshots.

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/ringbroker/ringbroker/proto"
)

// The security records' api keys (Kafka's).
const (
	KeyUserScramCredential       APIKey = 11
	KeyAccessControlEntry        APIKey = 18
	KeyRemoveAccessControlEntry  APIKey = 19
	KeyRemoveUserScramCredential APIKey = 22
)

// UserScramCredentialRecord sets one user's credential for one mechanism
// (Kafka's ScramMechanism code: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512): api key
// 11. The salted password itself is never stored.
type UserScramCredentialRecord struct {
	Name       string
	Mechanism  int8
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

// RemoveUserScramCredentialRecord deletes one user's credential for one
// mechanism: api key 22.
type RemoveUserScramCredentialRecord struct {
	Name      string
	Mechanism int8
}

// AccessControlEntryRecord adds one ACL binding, named by a unique id:
// api key 18. The codes are Kafka's (ResourceType, PatternType,
// AclOperation, AclPermissionType).
type AccessControlEntryRecord struct {
	ID             UUID
	ResourceType   int8
	ResourceName   string
	PatternType    int8
	Principal      string
	Host           string
	Operation      int8
	PermissionType int8
}

// RemoveAccessControlEntryRecord removes the ACL binding with id ID: api
// key 19.
type RemoveAccessControlEntryRecord struct {
	ID UUID
}

func (*UserScramCredentialRecord) Key() APIKey       { return KeyUserScramCredential }
func (*RemoveUserScramCredentialRecord) Key() APIKey { return KeyRemoveUserScramCredential }
func (*AccessControlEntryRecord) Key() APIKey        { return KeyAccessControlEntry }
func (*RemoveAccessControlEntryRecord) Key() APIKey  { return KeyRemoveAccessControlEntry }

func (*UserScramCredentialRecord) Version() int16       { return 0 }
func (*RemoveUserScramCredentialRecord) Version() int16 { return 0 }
func (*AccessControlEntryRecord) Version() int16        { return 0 }
func (*RemoveAccessControlEntryRecord) Version() int16  { return 0 }

// newSecurityRecord is newRecord for the security records (version 0).
func newSecurityRecord(key APIKey) Record {
	switch key {
	case KeyUserScramCredential:
		return &UserScramCredentialRecord{}
	case KeyRemoveUserScramCredential:
		return &RemoveUserScramCredentialRecord{}
	case KeyAccessControlEntry:
		return &AccessControlEntryRecord{}
	case KeyRemoveAccessControlEntry:
		return &RemoveAccessControlEntryRecord{}
	}
	return nil
}

func writeBytes(w *proto.Writer, b []byte) {
	w.BytesLen(int64(len(b)))
	w.B = append(w.B, b...)
}

// readBytes reads a non-nullable bytes field (a copy).
func readBytes(r *proto.Reader) []byte {
	b := r.NullableBytes()
	if b == nil {
		r.Fail()
		return nil
	}
	return bytes.Clone(b)
}

func (m *UserScramCredentialRecord) encode(w *proto.Writer) {
	w.String(m.Name)
	w.Int8(m.Mechanism)
	writeBytes(w, m.Salt)
	writeBytes(w, m.StoredKey)
	writeBytes(w, m.ServerKey)
	w.Int32(m.Iterations)
	w.Tags()
}

func (m *UserScramCredentialRecord) decode(r *proto.Reader, _ int16) {
	m.Name = readString(r)
	m.Mechanism = r.Int8()
	m.Salt = readBytes(r)
	m.StoredKey = readBytes(r)
	m.ServerKey = readBytes(r)
	m.Iterations = r.Int32()
	readTags(r, noTags)
}

func (m *RemoveUserScramCredentialRecord) encode(w *proto.Writer) {
	w.String(m.Name)
	w.Int8(m.Mechanism)
	w.Tags()
}

func (m *RemoveUserScramCredentialRecord) decode(r *proto.Reader, _ int16) {
	m.Name = readString(r)
	m.Mechanism = r.Int8()
	readTags(r, noTags)
}

func (m *AccessControlEntryRecord) encode(w *proto.Writer) {
	w.UUID(m.ID)
	w.Int8(m.ResourceType)
	w.String(m.ResourceName)
	w.Int8(m.PatternType)
	w.String(m.Principal)
	w.String(m.Host)
	w.Int8(m.Operation)
	w.Int8(m.PermissionType)
	w.Tags()
}

func (m *AccessControlEntryRecord) decode(r *proto.Reader, _ int16) {
	m.ID = readUUID(r)
	m.ResourceType = r.Int8()
	m.ResourceName = readString(r)
	m.PatternType = r.Int8()
	m.Principal = readString(r)
	m.Host = readString(r)
	m.Operation = r.Int8()
	m.PermissionType = r.Int8()
	readTags(r, noTags)
}

func (m *RemoveAccessControlEntryRecord) encode(w *proto.Writer) {
	w.UUID(m.ID)
	w.Tags()
}

func (m *RemoveAccessControlEntryRecord) decode(r *proto.Reader, _ int16) {
	m.ID = readUUID(r)
	readTags(r, noTags)
}

// ScramKey names one SCRAM credential: a user and a mechanism code.
type ScramKey struct {
	User      string
	Mechanism int8
}

// ScramCredentials returns every SCRAM credential, by user then mechanism.
// The records' byte slices belong to the image: callers must not modify
// them.
func (im Image) ScramCredentials() []UserScramCredentialRecord {
	out := slices.Collect(maps.Values(im.scram))
	slices.SortFunc(out, func(a, b UserScramCredentialRecord) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Mechanism, b.Mechanism))
	})
	return out
}

// ACLs returns every ACL binding, by id.
func (im Image) ACLs() []AccessControlEntryRecord {
	out := slices.Collect(maps.Values(im.acls))
	slices.SortFunc(out, func(a, b AccessControlEntryRecord) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

// applySecurity applies a security record to im in place, copying through
// o. Removing what is not there and adding an ACL id that exists are
// refused, as Kafka's replay refuses them.
func (im *Image) applySecurity(rec Record, o *owned, d *Delta) error {
	switch r := rec.(type) {
	case *UserScramCredentialRecord:
		if r.Name == "" || len(r.Salt) == 0 || len(r.StoredKey) == 0 || len(r.ServerKey) == 0 || r.Iterations <= 0 {
			return fmt.Errorf("metadata: SCRAM credential record for %q is incomplete", r.Name)
		}
		own(&im.scram, &o.scram)
		c := *r
		c.Salt, c.StoredKey, c.ServerKey = bytes.Clone(r.Salt), bytes.Clone(r.StoredKey), bytes.Clone(r.ServerKey)
		im.scram[ScramKey{User: r.Name, Mechanism: r.Mechanism}] = c
		d.ChangedScram = true
	case *RemoveUserScramCredentialRecord:
		k := ScramKey{User: r.Name, Mechanism: r.Mechanism}
		if _, ok := im.scram[k]; !ok {
			return fmt.Errorf("metadata: removal of unknown SCRAM credential %q/%d", r.Name, r.Mechanism)
		}
		own(&im.scram, &o.scram)
		delete(im.scram, k)
		d.ChangedScram = true
	case *AccessControlEntryRecord:
		if r.ID == (UUID{}) {
			return fmt.Errorf("metadata: ACL record with a zero id")
		}
		if _, ok := im.acls[r.ID]; ok {
			return fmt.Errorf("metadata: ACL id %x exists", r.ID)
		}
		own(&im.acls, &o.acls)
		im.acls[r.ID] = *r
		d.ChangedACLs = true
	case *RemoveAccessControlEntryRecord:
		if _, ok := im.acls[r.ID]; !ok {
			return fmt.Errorf("metadata: removal of unknown ACL id %x", r.ID)
		}
		own(&im.acls, &o.acls)
		delete(im.acls, r.ID)
		d.ChangedACLs = true
	}
	return nil
}

// appendSecurityRecords appends the records that rebuild the image's
// SCRAM credentials and ACLs (the end of a snapshot).
func (im Image) appendSecurityRecords(out []Record) []Record {
	for _, c := range im.ScramCredentials() {
		out = append(out, &c)
	}
	for _, a := range im.ACLs() {
		out = append(out, &a)
	}
	return out
}
