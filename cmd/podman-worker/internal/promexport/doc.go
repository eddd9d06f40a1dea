// Package promexport exposes the worker's figures to Prometheus: GET
// /metrics in the text format, through prometheus/client_golang, on a
// listener of its own (--metrics-addr) and, in --http mode, on the API's.
//
// It keeps no figure of its own that the JSON `metrics` method also
// reports: the gauges (in_flight, queued, queued_bytes, warm_containers,
// owned_containers, podman_up, podman_latency_seconds) are read at scrape
// time from the same functions that method calls, and the counters and
// histograms of calls are fed by the dispatcher's Observe hook, the same
// one that feeds the JSON method's counts, at the same moment.
//
// Cardinality is bounded by construction: no label takes a value a caller
// chooses. method is one of the registry's fixed names or "unknown",
// outcome is "ok" or one of the error table's types in lower case, result
// and start come from closed lists, and connection is one of the
// operator's configured connection names.
package promexport
