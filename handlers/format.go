package handlers

import (
	"strings"

	"go.podman.io/common/pkg/report"

	"github.com/podman-worker/podman-worker/rpc"
)

// render executes a --format template over v the way podman's own
// `--format` does: text/template with podman's functions (json, lower,
// upper, join, split, title, truncate, pad) over the same Go field names,
// so "{{.Host.Arch}}" or "{{json .Store}}" mean what they mean to podman.
func render(format string, v any) (string, error) {
	if report.IsJSON(format) {
		// podman's --format json prints the whole object as JSON.
		format = "{{json .}}"
	}
	tmpl, err := report.NewTemplate("format").Parse(report.NormalizeFormat(format))
	if err != nil {
		return "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"format\" is not a valid Go template: %v", err).With("field", "format")
	}
	var out strings.Builder
	if err := tmpl.Execute(&out, v); err != nil {
		return "", rpc.Errorf(rpc.KindInvalidParams, "Invalid params: \"format\" cannot be rendered: %v", err).With("field", "format")
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}
