// Package config reads taskfleet's TOML configuration file.
//
// [Load] reads a file, applies the defaults of [Default], reads the secret
// files it names and validates the result. Validation collects every
// problem it finds rather than stopping at the first and returns them as a
// [*ValidationError]; each [Problem] names the file, the line where it can
// be found, the remote and the field.
//
// Secrets (remote API token secrets and taskfleet's own API token secrets)
// are held as [Secret], which never prints its value, and no error of this
// package contains a secret: values from the file are not echoed in
// messages, and any problem text that would contain a configured secret is
// redacted.
//
// docs/configuration.md describes every field.
package config
