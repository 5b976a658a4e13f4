package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"
)

// OpenAPIPath serves the API's description.
const OpenAPIPath = "/openapi.json"

// openAPIYAML is the OpenAPI 3.1 description of the public API, written by hand (YAML reads
// and reviews better than JSON, and allows comments and anchors). Tests keep it true: every
// route is described and every description is a route (openapi_test.go), and the e2e tests
// validate every request and response against it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON is the document as served, converted once at start; a broken embedded file stops
// the process at once rather than on the first request (and fails the package's tests).
var openAPIJSON = mustOpenAPIJSON(openAPIYAML)

// OpenAPIDocument returns the OpenAPI document as served at /openapi.json (JSON).
func OpenAPIDocument() []byte { return openAPIJSON }

// openAPIToJSON converts the YAML document to JSON, dropping the top-level "x-yaml-anchors"
// key: it only holds the YAML anchors the document reuses, already expanded by the parser.
func openAPIToJSON(src []byte) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("openapi: parse YAML: %w", err)
	}
	delete(doc, "x-yaml-anchors")
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: to JSON: %w", err)
	}
	return out, nil
}

func mustOpenAPIJSON(src []byte) []byte {
	out, err := openAPIToJSON(src)
	if err != nil {
		panic(err) // the embedded file is part of the binary: a programming error
	}
	return out
}

// openAPI serves the description; no authentication: it holds no secret, and clients and
// tools need it before they have a token.
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIJSON)
}
