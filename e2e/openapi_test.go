package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/misybot/tenancy/api"
)

// openAPI is the API's own document (as served at /openapi.json) and a router over it. The
// router ignores the document's servers: the stacks listen on a port of their own.
var openAPI = sync.OnceValues(func() (*openAPIChecker, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIDocument())
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &openAPIChecker{doc: doc, router: router}, nil
})

type openAPIChecker struct {
	doc    *openapi3.T
	router routers.Router
}

// checkOpenAPI wraps the stack's API: every request an e2e test sends, and the answer it gets,
// is validated against the OpenAPI document (kin-openapi's openapi3filter), whichever client
// sent it. What it holds the API to:
//   - a request the document calls valid gets an answer whose status and body the document
//     describes for that operation;
//   - a request the document calls invalid (a missing signature header, a malformed tenant id,
//     a bad body…) is refused with a 4xx, itself as described;
//   - a request to no described path gets a 404 problem, to no described method a 405 one.
//
// Authentication is the API's job, not the validator's: the security requirements are
// accepted as they are (NoopAuthenticationFunc). The dashboard's static files are not
// described, and not checked.
func checkOpenAPI(t *testing.T, next http.Handler) http.Handler {
	t.Helper()
	oa, err := openAPI()
	if err != nil {
		t.Fatalf("the OpenAPI document does not load: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/dashboard") {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("openapi: read the request body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recordingWriter{ResponseWriter: w, status: http.StatusOK}
		oa.check(t, r.Clone(context.Background()), body, rec, func() { next.ServeHTTP(rec, r) })
	})
}

// check validates the request, serves it, then validates the answer.
func (oa *openAPIChecker) check(t *testing.T, req *http.Request, body []byte, rec *recordingWriter, serve func()) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	what := req.Method + " " + req.URL.RequestURI()
	route, params, routeErr := oa.router.FindRoute(req)
	var input *openapi3filter.RequestValidationInput
	var reqErr error
	if routeErr == nil {
		input = &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		}
		reqErr = openapi3filter.ValidateRequest(context.Background(), input)
	}
	serve()
	got := rec.status
	answer := strings.TrimSpace(string(truncate(rec.body.Bytes(), 600)))

	switch {
	case errors.Is(routeErr, routers.ErrPathNotFound), errors.Is(routeErr, routers.ErrMethodNotAllowed):
		want := http.StatusNotFound
		if errors.Is(routeErr, routers.ErrMethodNotAllowed) {
			want = http.StatusMethodNotAllowed
		}
		if got != want {
			t.Errorf("openapi: %s is not described (%v), yet the API answered %d: %s", what, routeErr, got, answer)
		}
		oa.checkProblem(t, what, rec)
		return
	case routeErr != nil:
		t.Errorf("openapi: %s: %v", what, routeErr)
		return
	case reqErr != nil && (got < 400 || got > 499):
		t.Errorf("openapi: %s is invalid by the document, yet the API answered %d: %v\nanswer: %s", what, got, reqErr, answer)
	}
	if req.Method == http.MethodHead {
		return
	}
	resErr := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input, Status: got, Header: rec.Header(),
		Body:    io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if resErr != nil {
		t.Errorf("openapi: the answer %d to %s is not as described: %v\nanswer: %s", got, what, resErr, answer)
	}
}

// checkProblem validates an answer to an undescribed request against the Problem schema.
func (oa *openAPIChecker) checkProblem(t *testing.T, what string, rec *recordingWriter) {
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("openapi: the answer to %s is %q, not a problem document", what, ct)
		return
	}
	var v any
	if err := json.Unmarshal(rec.body.Bytes(), &v); err != nil {
		t.Errorf("openapi: the answer to %s is not JSON: %v", what, err)
		return
	}
	if err := oa.doc.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("openapi: the answer to %s is not a problem document: %v", what, err)
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return append(b[:n:n], "…"...)
	}
	return b
}

// recordingWriter passes the answer through and keeps a copy of its status and body.
type recordingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	wrote  bool
}

func (w *recordingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
