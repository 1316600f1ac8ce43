package integration

// TestTLSEncryptedKey: an SSL listener whose key store holds an encrypted
// PKCS#8 key as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it (PBES2,
// PBKDF2 with HMAC-SHA256, AES-256-CBC) serves with ssl.key.password; with
// a wrong password the daemon refuses to start and says why.

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringbroker/ringbroker/internal/testpki"
)

func TestTLSEncryptedKey(t *testing.T) {
	openssl := requireTool(t, "openssl")
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ringbroker test CA")
	leaf := ca.Issue(t, testpki.LeafOptions{Subject: pkix.Name{CommonName: "broker-enc"}, Server: true})
	plainKey := testpki.Write(t, dir, "plain.key", leaf.KeyPEM)
	encKey, err := exec.Command(openssl, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", plainKey, "-passout", "pass:k3y-pass").Output()
	if err != nil {
		t.Fatalf("openssl pkcs8: %v", err)
	}
	if !strings.Contains(string(encKey), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("openssl wrote no encrypted key:\n%s", encKey)
	}
	if err := os.Remove(plainKey); err != nil {
		t.Fatal(err)
	}
	keystore := testpki.Write(t, dir, "broker.pem", leaf.CertPEM, encKey)
	props := func(sslAddr, password string) map[string]string {
		return map[string]string{
			"listeners":                      "PLAINTEXT://127.0.0.1:{port},SSL://" + sslAddr,
			"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL",
			"ssl.keystore.type":              "PEM",
			"ssl.keystore.location":          keystore,
			"ssl.key.password":               password,
			"log.dirs":                       filepath.Join(t.TempDir(), "data"),
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		var args []string
		for k, v := range props(fmt.Sprintf("127.0.0.1:%d", freePort(t)), "not-the-password") {
			args = append(args, "--set", k+"="+strings.ReplaceAll(v, "{port}", fmt.Sprint(freePort(t))))
		}
		out, err := runDaemon(t, args...)
		if err == nil {
			t.Fatalf("ringbrokerd started with a wrong ssl.key.password:\n%s", out)
		}
		if !strings.Contains(out, "ssl.key.password does not decrypt the private key") || strings.Contains(out, "not-the-password") {
			t.Fatalf("the refusal does not say why, or shows the password:\n%s", out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "ssl.key.password") {
				t.Logf("refused: %s", line)
			}
		}
	})

	forEachBackend(t, func(t *testing.T, backend string) {
		sslAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		startBroker(t, backend, props(sslAddr, "k3y-pass"))
		conn, err := tls.DialWithDialer(dialer5s, "tcp", sslAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("TLS to the listener with the encrypted key: %v", err)
		}
		defer conn.Close()
		if err := apiVersionsOn(conn, 1, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "broker-enc" {
			t.Fatalf("served %q", cn)
		}
	})
}
