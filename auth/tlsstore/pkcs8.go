package tlsstore

// Encrypted PKCS#8 private keys ("ENCRYPTED PRIVATE KEY", RFC 5958
// EncryptedPrivateKeyInfo) with PBES2 (RFC 8018): what
// `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes, and what Kafka's PEM key
// store reads with ssl.key.password. Go's standard library parses the
// decrypted PKCS#8 but not the encryption around it; this is the small
// part it lacks: the ASN.1 of the parameters, PBKDF2 (crypto/pbkdf2) and
// AES-CBC with PKCS#7 padding.
//
//	EncryptedPrivateKeyInfo ::= SEQUENCE {
//	    encryptionAlgorithm  AlgorithmIdentifier,  -- PBES2, 1.2.840.113549.1.5.13
//	    encryptedData        OCTET STRING }
//	PBES2-params ::= SEQUENCE {
//	    keyDerivationFunc    AlgorithmIdentifier,  -- PBKDF2, 1.2.840.113549.1.5.12
//	    encryptionScheme     AlgorithmIdentifier } -- aes{128,192,256}-CBC, IV as parameter
//	PBKDF2-params ::= SEQUENCE {
//	    salt                 OCTET STRING,         -- (otherSource: refused)
//	    iterationCount       INTEGER,
//	    keyLength            INTEGER OPTIONAL,
//	    prf                  AlgorithmIdentifier DEFAULT hmacWithSHA1 }
//
// Served: PRF HMAC-SHA1/224/256/384/512, AES-128/192/256-CBC. Refused with
// a message naming what was found: PBES1 and PKCS#12 schemes (openssl's
// -v1 forms), DES/3DES, scrypt. A wrong password almost always shows as
// bad padding, else as a key that does not parse: both are reported as a
// password that does not decrypt the key.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
)

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}

	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}

	oidAES128CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// pbkdf2IterationsMax bounds the work a key file may ask for (openssl
// writes 2048; a million is already seconds).
const pbkdf2IterationsMax = 10_000_000

// errWrongPassword: the password does not decrypt the key.
var errWrongPassword = errors.New("ssl.key.password does not decrypt the private key (wrong password, or a damaged key)")

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

// decryptPKCS8 returns the PKCS#8 PrivateKeyInfo inside der (an
// EncryptedPrivateKeyInfo), decrypted with password. iterationsMax bounds
// PBKDF2's iterations.
func decryptPKCS8(der []byte, password string, iterationsMax int) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, fmt.Errorf("encrypted private key: %w", err)
	} else if len(rest) > 0 {
		return nil, errors.New("encrypted private key: trailing data")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("encrypted private key: scheme %v is not served (only PBES2, as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes)", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) > 0 {
		return nil, errors.New("encrypted private key: bad PBES2 parameters")
	}
	if !params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("encrypted private key: key derivation %v is not served (only PBKDF2)", params.KeyDerivationFunc.Algorithm)
	}
	var kdf pbkdf2Params
	if rest, err := asn1.Unmarshal(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil || len(rest) > 0 {
		return nil, errors.New("encrypted private key: bad PBKDF2 parameters")
	}
	if kdf.Iterations < 1 || kdf.Iterations > iterationsMax {
		return nil, fmt.Errorf("encrypted private key: %d PBKDF2 iterations (served: 1 to %d)", kdf.Iterations, iterationsMax)
	}
	var prf func() hash.Hash
	switch alg := kdf.PRF.Algorithm; {
	case len(alg) == 0 || alg.Equal(oidHMACSHA1):
		prf = sha1.New
	case alg.Equal(oidHMACSHA224):
		prf = sha256.New224
	case alg.Equal(oidHMACSHA256):
		prf = sha256.New
	case alg.Equal(oidHMACSHA384):
		prf = sha512.New384
	case alg.Equal(oidHMACSHA512):
		prf = sha512.New
	default:
		return nil, fmt.Errorf("encrypted private key: PBKDF2 PRF %v is not served", alg)
	}
	var keyLen int
	switch alg := params.EncryptionScheme.Algorithm; {
	case alg.Equal(oidAES128CBC):
		keyLen = 16
	case alg.Equal(oidAES192CBC):
		keyLen = 24
	case alg.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, fmt.Errorf("encrypted private key: cipher %v is not served (AES-128/192/256-CBC are)", alg)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, fmt.Errorf("encrypted private key: key length %d does not fit the cipher's %d", kdf.KeyLength, keyLen)
	}
	var iv []byte
	if rest, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(rest) > 0 || len(iv) != aes.BlockSize {
		return nil, errors.New("encrypted private key: bad AES-CBC IV")
	}
	data := info.EncryptedData
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, errors.New("encrypted private key: encrypted data is not whole AES blocks")
	}
	key, err := pbkdf2.Key(prf, password, kdf.Salt, kdf.Iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("encrypted private key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, data)
	// PKCS#7 padding: n bytes of value n, 1 <= n <= block size.
	n := int(plain[len(plain)-1])
	if n < 1 || n > aes.BlockSize {
		return nil, errWrongPassword
	}
	for _, b := range plain[len(plain)-n:] {
		if int(b) != n {
			return nil, errWrongPassword
		}
	}
	plain = plain[:len(plain)-n]
	if _, err := x509.ParsePKCS8PrivateKey(plain); err != nil {
		return nil, errWrongPassword
	}
	return plain, nil
}
