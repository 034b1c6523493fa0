// Package test holds cosigner's end-to-end tests against real CometBFT nodes
// built from the Go module proxy, and the latency harness.
package test
