package ghapp_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/ferrycd/ferry/pkg/ghapp"
)

func ExampleJWT() {
	// A key as GitHub's "Generate a private key" downloads it (PKCS#1).
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	file := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})

	key, err := ghapp.LoadKey(file)
	if err != nil {
		fmt.Println(err)
		return
	}
	jwt, err := ghapp.JWT("123456", key, time.Unix(1_800_000_000, 0))
	if err != nil {
		fmt.Println(err)
		return
	}
	parts := strings.Split(jwt, ".")
	for _, p := range parts[:2] {
		b, _ := base64.RawURLEncoding.DecodeString(p)
		fmt.Println(string(b))
	}
	// Output:
	// {"alg":"RS256","typ":"JWT"}
	// {"iat":1799999940,"exp":1800000540,"iss":"123456"}
}

func ExampleLoadKey() {
	_, err := ghapp.LoadKey([]byte("/run/secrets/app.pem"))
	fmt.Println(err)
	// Output:
	// GitHub App private key: no PEM block found: want the .pem file GitHub's "Generate a private key" downloads (-----BEGIN RSA PRIVATE KEY-----)
}
