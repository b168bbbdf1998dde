package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// maxSecretFile bounds what is read from a secret file: a token secret is
// tens of bytes, so a large file is a wrong path.
const maxSecretFile = 4096

// readSecretFile returns the content of a secret file without trailing
// white space. Errors name the file, never the content. The content is
// returned even with an error (when it is malformed) so that the caller
// can redact it from other problems.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", path, err)
	}
	if len(data) > maxSecretFile {
		return "", fmt.Errorf("secret file %s is larger than %d bytes", path, maxSecretFile)
	}
	s := strings.TrimRightFunc(string(data), unicode.IsSpace)
	if err := checkSecret(s); err != nil {
		return s, fmt.Errorf("secret file %s: %w", path, err)
	}
	return s, nil
}

// checkSecret checks that a secret can be sent in an HTTP header.
func checkSecret(s string) error {
	if s == "" {
		return errors.New("secret is empty")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII {
			return errors.New("secret contains white space, control or non-ASCII characters")
		}
	}
	return nil
}
