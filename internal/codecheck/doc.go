// Package codecheck holds tests about the repository's code itself, not
// its behaviour: go test ./... runs them with the rest.
package codecheck
