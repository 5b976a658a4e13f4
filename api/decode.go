package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-playground/validator/v10"
	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/jsontext"
)

// decodeJSON reads exactly one JSON object into dst, strictly: unknown fields, trailing data,
// wrong types and non-JSON content types are client errors with a message that says which.
func decodeJSON(c echo.Context, dst any) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return newProblem(http.StatusUnsupportedMediaType, ProblemUnsupported, "Unsupported media type",
				"send the body as application/json")
		}
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return decodeProblem(err)
	}
	// Before decoding: Go's decoder would replace invalid UTF-8 and lone surrogates with U+FFFD
	// in strings, and keep them as they are in raw values, which PostgreSQL then refuses.
	if err := jsontext.Check(body); err != nil {
		return malformed("the body cannot be stored as sent: " + err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return malformed("the body must hold exactly one JSON object")
	}
	if field, ok := findNUL(reflect.ValueOf(dst), ""); ok {
		// PostgreSQL cannot store U+0000 in text or jsonb: refuse it here as the client's
		// mistake it is, instead of failing later (and, in a workflow, retrying forever).
		return validationProblem(FieldError{Field: strings.TrimPrefix(field, "."), Message: "must not contain the NUL character (\\u0000)"})
	}
	return nil
}

// findNUL walks a decoded value for a string (or raw JSON) holding U+0000 and returns its path.
func findNUL(v reflect.Value, path string) (string, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", false
		}
		return findNUL(v.Elem(), path)
	case reflect.String:
		return path, strings.ContainsRune(v.String(), 0)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous { // embedded structs promote their exported fields
				continue
			}
			name := path
			if !f.Anonymous {
				n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				name = path + "." + n
			}
			if p, ok := findNUL(v.Field(i), name); ok {
				return p, true
			}
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeOf(json.RawMessage(nil)) {
			var decoded any
			if json.Unmarshal(v.Bytes(), &decoded) == nil {
				return findNUL(reflect.ValueOf(&decoded), path)
			}
			return "", false
		}
		for i := range v.Len() {
			if p, ok := findNUL(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			key := iter.Key()
			if key.Kind() == reflect.String && strings.ContainsRune(key.String(), 0) {
				return path, true
			}
			if p, ok := findNUL(iter.Value(), path); ok {
				return p, true
			}
		}
	}
	return "", false
}

func decodeProblem(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return echo.ErrStatusRequestEntityTooLarge
	case errors.Is(err, io.EOF):
		return malformed("the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return malformed("the JSON body ends unexpectedly")
	case errors.As(err, &syntaxErr):
		return malformed(fmt.Sprintf("invalid JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error()))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return malformed("the body must be a JSON object")
		}
		return validationProblem(FieldError{Field: field, Message: "must be a JSON " + jsonKind(typeErr.Type)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return validationProblem(FieldError{Field: name, Message: "is not a known field"})
	}
	return malformed("the body is not valid JSON")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Float64:
		return "number"
	}
	return "value of another type"
}

// newValidator builds the one validator of the API, reporting fields by their JSON names and
// knowing the tenant rules (ids, origins).
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	must := func(err error) {
		if err != nil {
			panic(err) // programming error at start-up, not a request path
		}
	}
	must(v.RegisterValidation("tenantid", func(fl validator.FieldLevel) bool {
		return tenant.ValidateID(fl.Field().String()) == nil
	}))
	must(v.RegisterValidation("notblank", func(fl validator.FieldLevel) bool {
		return strings.TrimSpace(fl.Field().String()) != ""
	}))
	must(v.RegisterValidation("cellid", func(fl validator.FieldLevel) bool {
		return cells.ValidID(fl.Field().String())
	}))
	must(v.RegisterValidation("origin", func(fl validator.FieldLevel) bool {
		return validOrigin(fl.Field().String())
	}))
	return v
}

// validOrigin accepts exactly what browsers send in an Origin header: scheme://host[:port],
// http or https, lowercase, with no path, query, fragment or credentials. Wildcards are refused:
// a tenant lists its origins one by one.
func validOrigin(s string) bool {
	if s != strings.ToLower(s) || strings.Contains(s, "*") {
		return false
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" {
		return false
	}
	if strings.ContainsAny(rest, "/?#@ ") || strings.HasPrefix(rest, ":") || strings.HasSuffix(rest, ":") {
		return false
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		port, err := strconv.Atoi(rest[i+1:])
		return err == nil && port >= 1 && port <= 65535 && !strings.HasPrefix(rest[i+1:], "0")
	}
	return true
}

// validate runs the struct rules and turns failures into one 400 problem listing every field.
func (s *Server) validate(v any) error {
	err := s.validator.Struct(v)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return fmt.Errorf("validate: %w", err)
	}
	out := make([]FieldError, 0, len(verrs))
	for _, fe := range verrs {
		out = append(out, FieldError{Field: fieldPath(fe), Message: fieldMessage(fe)})
	}
	return validationProblem(out...)
}

// fieldPath is the JSON path without the top-level struct name and without embedded structs,
// which have no JSON name of their own: "allowedOrigins[1]".
func fieldPath(fe validator.FieldError) string {
	_, path, found := strings.Cut(fe.Namespace(), ".")
	if !found {
		return fe.Field()
	}
	return strings.NewReplacer("tenantFields.", "", "registerRequest.", "").Replace(path)
}

func fieldMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "email":
		return "must be a valid email address"
	case "http_url":
		return "must be an http or https URL"
	case "max":
		if fe.Kind() == reflect.Slice {
			return "must have at most " + fe.Param() + " items"
		}
		return "must be at most " + fe.Param() + " characters"
	case "min":
		return "must be at least " + fe.Param()
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "tenantid":
		return fmt.Sprintf("must be %d to %d lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen", tenant.IDMinLen, tenant.IDMaxLen)
	case "origin":
		return "must be an origin such as https://app.example.com (scheme, host, optional port; lowercase; no path or wildcard)"
	case "notblank":
		return "must not be blank"
	case "cellid":
		return "must be 2 to 32 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen"
	case "printascii":
		return "must be printable ASCII"
	case "unique":
		return "must not contain duplicates"
	}
	return "is invalid (" + fe.Tag() + ")"
}
