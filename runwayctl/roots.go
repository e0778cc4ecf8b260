package main

// The Mozilla root certificates, compiled in: the runwayctl image carries no certificate files,
// and Go uses these only where the system has no roots of its own.
import _ "golang.org/x/crypto/x509roots/fallback"
