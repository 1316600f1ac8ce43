package tlsstore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringbroker/ringbroker/internal/testpki"
)

// encryptPKCS8 is the test's own PBES2 writer (the inverse of
// decryptPKCS8), so cases need no tool: PRF and AES key size chosen.
func encryptPKCS8(t testing.TB, plain []byte, password string, prf asn1.ObjectIdentifier, newHash func() hash.Hash, cipherOID asn1.ObjectIdentifier, keyLen, iterations int) []byte {
	t.Helper()
	salt, iv := make([]byte, 16), make([]byte, aes.BlockSize)
	rand.Read(salt)
	rand.Read(iv)
	key, err := pbkdf2.Key(newHash, password, salt, iterations, keyLen)
	if err != nil {
		t.Fatal(err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	data := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(n)}, n)...)
	block, _ := aes.NewCipher(key)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(data, data)
	kdf := pbkdf2Params{Salt: salt, Iterations: iterations}
	if prf != nil {
		kdf.PRF = pkix.AlgorithmIdentifier{Algorithm: prf, Parameters: asn1.NullRawValue}
	}
	mustRaw := func(v any) asn1.RawValue {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{FullBytes: b}
	}
	params := pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: mustRaw(kdf)},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: cipherOID, Parameters: mustRaw(iv)},
	}
	der, err := asn1.Marshal(encryptedPrivateKeyInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: mustRaw(params)}, EncryptedData: data})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pkcs8Of(t testing.TB, leaf *testpki.Leaf) []byte {
	t.Helper()
	b, _ := pem.Decode(leaf.KeyPEM)
	return b.Bytes
}

func TestDecryptPKCS8(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	leaf := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker"}, Server: true})
	plain := pkcs8Of(t, leaf)
	for _, c := range []struct {
		name    string
		prf     asn1.ObjectIdentifier
		h       func() hash.Hash
		cipher  asn1.ObjectIdentifier
		keyLen  int
		wantErr string
	}{
		{"sha256 aes-256", oidHMACSHA256, sha256.New, oidAES256CBC, 32, ""},
		{"sha256 aes-128", oidHMACSHA256, sha256.New, oidAES128CBC, 16, ""},
		{"default sha1 aes-192", nil, sha1.New, oidAES192CBC, 24, ""},
		{"3des", oidHMACSHA256, sha256.New, asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}, 24, "cipher"},
	} {
		der := encryptPKCS8(t, plain, "s3cret", c.prf, c.h, c.cipher, c.keyLen, 2048)
		got, err := decryptPKCS8(der, "s3cret", pbkdf2IterationsMax)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: %v, want %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if _, err := decryptPKCS8(der, "wrong", pbkdf2IterationsMax); err != errWrongPassword {
			t.Errorf("%s, wrong password: %v", c.name, err)
		}
	}
	der := encryptPKCS8(t, plain, "s3cret", oidHMACSHA256, sha256.New, oidAES256CBC, 32, 5000)
	if _, err := decryptPKCS8(der, "s3cret", 4000); err == nil || !strings.Contains(err.Error(), "iterations") {
		t.Errorf("over the iteration bound: %v", err)
	}
}

// TestKeyPairEncrypted: keyPair with an encrypted key: the right password
// loads it, a wrong or missing one is refused with a clear message. With
// openssl on the machine, its own `pkcs8 -topk8 -v2 aes-256-cbc` output
// (PBKDF2 with HMAC-SHA256) is read too.
func TestKeyPairEncrypted(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	leaf := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker"}, Server: true})
	enc := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY",
		Bytes: encryptPKCS8(t, pkcs8Of(t, leaf), "s3cret", oidHMACSHA256, sha256.New, oidAES256CBC, 32, 2048)})
	keys := map[string][]byte{"ours": enc}
	if openssl, err := exec.LookPath("openssl"); err == nil {
		dir := t.TempDir()
		in := filepath.Join(dir, "key.pem")
		if err := os.WriteFile(in, leaf.KeyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(openssl, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", in, "-passout", "pass:s3cret").Output()
		if err != nil {
			t.Fatalf("openssl pkcs8: %v", err)
		}
		keys["openssl"] = out
	} else {
		t.Log("no openssl: only our own encoding is read")
	}
	for who, key := range keys {
		cert, err := keyPair(leaf.CertPEM, key, "s3cret")
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if _, err := x509.ParseCertificate(cert.Certificate[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := keyPair(leaf.CertPEM, key, "wrong"); err == nil || !strings.Contains(err.Error(), "ssl.key.password does not decrypt") {
			t.Errorf("%s, wrong password: %v", who, err)
		}
		if _, err := keyPair(leaf.CertPEM, key, ""); err == nil || !strings.Contains(err.Error(), "set ssl.key.password") {
			t.Errorf("%s, no password: %v", who, err)
		}
	}
	// The key of another certificate, decrypted fine, does not match.
	other := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "other"}, Server: true})
	if _, err := keyPair(other.CertPEM, enc, "s3cret"); err == nil {
		t.Error("a key that is not the certificate's was taken")
	}
}

// FuzzDecryptPKCS8: any bytes and password: an error or a PKCS#8 key that
// parses, never a panic; the work is bounded by the iteration bound.
func FuzzDecryptPKCS8(f *testing.F) {
	ca := testpki.NewCA(f, "ca")
	leaf := ca.Issue(f, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker"}, Server: true})
	f.Add(encryptPKCS8(f, pkcs8Of(f, leaf), "pw", oidHMACSHA256, sha256.New, oidAES256CBC, 32, 16), "pw")
	f.Add(encryptPKCS8(f, pkcs8Of(f, leaf), "pw", nil, sha1.New, oidAES128CBC, 16, 3), "other")
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01}, "")
	f.Fuzz(func(t *testing.T, der []byte, password string) {
		plain, err := decryptPKCS8(der, password, 64)
		if err != nil {
			return
		}
		if _, err := x509.ParsePKCS8PrivateKey(plain); err != nil {
			t.Fatalf("decrypted to a key that does not parse: %v", err)
		}
	})
}
