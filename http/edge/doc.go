// Package edge is Parley's HTTP edge: the chi router, its middleware in the
// order docs/http.md gives, the JSON error contract and the handlers that
// forward requests to grains.
//
// Every response carries X-Trace-Id, and every error is the JSON body
//
//	{"error": {"code": "...", "message": "...", "details": [...]}, "traceId": "..."}
package edge
