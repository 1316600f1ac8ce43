// Package pwenc encrypts the secrets of dynamic broker configs before they
// are stored (the single node's local store, the cluster's metadata log),
// as Kafka's EncryptingPasswordEncoder does with password.encoder.secret:
// a key derived from the secret by PBKDF2 (a fresh 256-byte salt per
// value), AES in CBC (PKCS#5 padding) or GCM mode, and the parameters
// stored beside the ciphertext, so a value encoded with other settings
// still decodes. The stored form is Kafka's comma-separated name:value
// list:
//
//	keyFactoryAlgorithm:PBKDF2WithHmacSHA512,cipherAlgorithm:AES/CBC/PKCS5Padding,
//	keyLength:128,salt:<base64>,iterations:4096,encryptedPassword:<base64>,
//	passwordLength:<UTF-16 units>,initializationVector:<base64>
//	[,authenticationTagLength:128 (GCM)]
//
// Without a secret nothing is encoded (ErrNoSecret, Kafka's "Password
// encoder secret not configured").
package pwenc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Ciphers and key factories served (Kafka's defaults first).
const (
	CipherCBC = "AES/CBC/PKCS5Padding"
	CipherGCM = "AES/GCM/NoPadding"

	KeyFactorySHA512 = "PBKDF2WithHmacSHA512"
	KeyFactorySHA256 = "PBKDF2WithHmacSHA256"
	KeyFactorySHA1   = "PBKDF2WithHmacSHA1"
)

// ErrNoSecret: password.encoder.secret is not set.
//
//lint:ignore ST1005 Kafka's message, word for word
var ErrNoSecret = errors.New("Password encoder secret not configured")

// Bounds on what a stored value may ask of the decoder.
const (
	iterationsMax  = 1 << 20
	encodedMax     = 1 << 20
	saltBytes      = 256
	gcmTagBitsWant = 128
)

// Encoder encodes and decodes password values.
type Encoder struct {
	// Secret is password.encoder.secret; OldSecret
	// password.encoder.old.secret, tried when Secret does not decode a
	// value (after the secret was rotated).
	Secret, OldSecret string
	// Cipher is password.encoder.cipher.algorithm ("" = CipherCBC);
	// KeyFactory password.encoder.keyfactory.algorithm ("" =
	// KeyFactorySHA512); KeyLength password.encoder.key.length in bits
	// (0 = 128); Iterations password.encoder.iterations (0 = 4096).
	Cipher, KeyFactory    string
	KeyLength, Iterations int
}

// Check reports settings that cannot encode.
func (e Encoder) Check() error {
	if _, err := prf(e.keyFactory()); err != nil {
		return err
	}
	switch e.cipher() {
	case CipherCBC, CipherGCM:
	default:
		return fmt.Errorf("cipher algorithm %s is not served (served: %s, %s)", e.cipher(), CipherCBC, CipherGCM)
	}
	switch e.keyLength() {
	case 128, 192, 256:
	default:
		return fmt.Errorf("key length %d: AES takes 128, 192 or 256 bits", e.keyLength())
	}
	if it := e.iterations(); it < 1024 || it > iterationsMax {
		return fmt.Errorf("iterations %d: want 1024..%d", it, iterationsMax)
	}
	return nil
}

func (e Encoder) cipher() string     { return or(e.Cipher, CipherCBC) }
func (e Encoder) keyFactory() string { return or(e.KeyFactory, KeyFactorySHA512) }
func (e Encoder) keyLength() int {
	if e.KeyLength == 0 {
		return 128
	}
	return e.KeyLength
}
func (e Encoder) iterations() int {
	if e.Iterations == 0 {
		return 4096
	}
	return e.Iterations
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func prf(keyFactory string) (func() hash.Hash, error) {
	switch keyFactory {
	case KeyFactorySHA512:
		return sha512.New, nil
	case KeyFactorySHA256:
		return sha256.New, nil
	case KeyFactorySHA1:
		return sha1.New, nil
	}
	return nil, fmt.Errorf("key factory algorithm %s is not served (served: %s, %s, %s)", keyFactory, KeyFactorySHA512, KeyFactorySHA256, KeyFactorySHA1)
}

// Encode encrypts password with Secret.
func (e Encoder) Encode(password string) (string, error) {
	if e.Secret == "" {
		return "", ErrNoSecret
	}
	if err := e.Check(); err != nil {
		return "", err
	}
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	block, err := e.block(e.Secret, e.keyFactory(), e.keyLength(), e.iterations(), salt)
	if err != nil {
		return "", err
	}
	var iv, ct []byte
	var extra string
	switch e.cipher() {
	case CipherCBC:
		iv = make([]byte, aes.BlockSize)
		if _, err := rand.Read(iv); err != nil {
			return "", err
		}
		pad := aes.BlockSize - len(password)%aes.BlockSize
		ct = append([]byte(password), make([]byte, pad)...)
		for i := len(password); i < len(ct); i++ {
			ct[i] = byte(pad)
		}
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	case CipherGCM:
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return "", err
		}
		iv = make([]byte, aead.NonceSize())
		if _, err := rand.Read(iv); err != nil {
			return "", err
		}
		ct = aead.Seal(nil, iv, []byte(password), nil)
		extra = ",authenticationTagLength:" + strconv.Itoa(gcmTagBitsWant)
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("keyFactoryAlgorithm:%s,cipherAlgorithm:%s,keyLength:%d,salt:%s,iterations:%d,encryptedPassword:%s,passwordLength:%d,initializationVector:%s%s",
		e.keyFactory(), e.cipher(), e.keyLength(), b64(salt), e.iterations(), b64(ct), javaLength(password), b64(iv), extra), nil
}

// javaLength is a string's length in UTF-16 units (Java's String.length,
// which Kafka stores as passwordLength).
func javaLength(s string) int { return len(utf16.Encode([]rune(s))) }

func (e Encoder) block(secret, keyFactory string, keyLength, iterations int, salt []byte) (cipher.Block, error) {
	h, err := prf(keyFactory)
	if err != nil {
		return nil, err
	}
	key, err := pbkdf2.Key(h, secret, salt, iterations, keyLength/8)
	if err != nil {
		return nil, err
	}
	return aes.NewCipher(key)
}

// Decode decrypts a value Encode (or Kafka) wrote, with Secret, else
// OldSecret.
func (e Encoder) Decode(encoded string) (string, error) {
	if e.Secret == "" && e.OldSecret == "" {
		return "", ErrNoSecret
	}
	var err error
	for _, s := range []string{e.Secret, e.OldSecret} {
		if s == "" {
			continue
		}
		var v string
		if v, err = decode(s, encoded); err == nil {
			return v, nil
		}
	}
	return "", err
}

var errUndecodable = errors.New("password could not be decoded")

func decode(secret, encoded string) (string, error) {
	if len(encoded) > encodedMax {
		return "", fmt.Errorf("%w: %d bytes", errUndecodable, len(encoded))
	}
	params := map[string]string{}
	for _, kv := range strings.Split(encoded, ",") {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return "", fmt.Errorf("%w: %q is not name:value", errUndecodable, kv)
		}
		params[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	b64 := func(k string) ([]byte, error) {
		b, err := base64.StdEncoding.DecodeString(params[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errUndecodable, k, err)
		}
		return b, nil
	}
	num := func(k string, lo, hi int) (int, error) {
		n, err := strconv.Atoi(params[k])
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%w: %s %q", errUndecodable, k, params[k])
		}
		return n, nil
	}
	keyLength, err := num("keyLength", 128, 256)
	if err != nil {
		return "", err
	}
	iterations, err := num("iterations", 1, iterationsMax)
	if err != nil {
		return "", err
	}
	length, err := num("passwordLength", 0, encodedMax)
	if err != nil {
		return "", err
	}
	salt, err := b64("salt")
	if err != nil {
		return "", err
	}
	iv, err := b64("initializationVector")
	if err != nil {
		return "", err
	}
	ct, err := b64("encryptedPassword")
	if err != nil {
		return "", err
	}
	keyFactory := or(params["keyFactoryAlgorithm"], KeyFactorySHA512)
	block, err := Encoder{}.block(secret, keyFactory, keyLength, iterations, salt)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errUndecodable, err)
	}
	var plain []byte
	switch params["cipherAlgorithm"] {
	case CipherCBC:
		if len(iv) != aes.BlockSize || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
			return "", fmt.Errorf("%w: bad CBC sizes", errUndecodable)
		}
		plain = make([]byte, len(ct))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
		pad := int(plain[len(plain)-1])
		if pad == 0 || pad > aes.BlockSize {
			return "", errUndecodable
		}
		for _, b := range plain[len(plain)-pad:] {
			if int(b) != pad {
				return "", errUndecodable
			}
		}
		plain = plain[:len(plain)-pad]
	case CipherGCM:
		tag, err := num("authenticationTagLength", 96, 128)
		if err != nil {
			return "", err
		}
		aead, err := cipher.NewGCMWithNonceSize(block, max(len(iv), 1))
		if err == nil && tag != 128 {
			aead, err = cipher.NewGCMWithTagSize(block, tag/8)
		}
		if err != nil || len(iv) != aead.NonceSize() {
			return "", fmt.Errorf("%w: bad GCM parameters", errUndecodable)
		}
		if plain, err = aead.Open(nil, iv, ct, nil); err != nil {
			return "", errUndecodable
		}
	default:
		return "", fmt.Errorf("%w: cipher algorithm %q", errUndecodable, params["cipherAlgorithm"])
	}
	v := string(plain)
	if javaLength(v) != length {
		return "", fmt.Errorf("%w, sanity check of length failed", errUndecodable)
	}
	return v, nil
}
