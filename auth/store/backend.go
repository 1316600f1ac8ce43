package store

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/ringbroker/ringbroker/storage"
)

// Backend stores named blobs durably: the seam between the security sets
// and where they live (a local directory now, the cluster metadata log
// later).
type Backend interface {
	// Load returns the blob named name; ok is false if there is none.
	Load(name string) (data []byte, ok bool, err error)
	// Save replaces the blob named name; when it returns nil the blob is
	// durable.
	Save(name string, data []byte) error
}

// Blob names.
const (
	CredentialsBlob = "security-scram-credentials"
	ACLsBlob        = "security-acls"
)

// FileBackend keeps each blob in a file of Dir (the first log dir),
// written atomically through FS.
type FileBackend struct {
	FS  storage.FS
	Dir string
}

// Load implements Backend.
func (f FileBackend) Load(name string) ([]byte, bool, error) {
	fsys := f.FS
	if fsys == nil {
		fsys = storage.DefaultFS
	}
	data, err := fsys.ReadFile(filepath.Join(f.Dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// Save implements Backend.
func (f FileBackend) Save(name string, data []byte) error {
	return storage.WriteFileAtomic(f.FS, filepath.Join(f.Dir, name), data)
}
