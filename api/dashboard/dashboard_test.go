package dashboard_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/api/dashboard"
)

// newApp is the real application (api.New): the test also fails when the dashboard is not
// mounted. Serving static files touches none of the stores, so none is configured.
func newApp(t *testing.T) *echo.Echo {
	t.Helper()
	return api.New(api.Config{Logger: slog.New(slog.DiscardHandler)})
}

func get(t *testing.T, e *echo.Echo, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func requireSecurityHeaders(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
		rec.Header().Get("Content-Security-Policy"))
	require.Equal(t, dashboard.CSP, rec.Header().Get("Content-Security-Policy"))
	require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
	require.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
}

var scriptTag = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)

var attrRef = regexp.MustCompile(`(?i)\s(?:src|href)\s*=\s*["']([^"']*)["']`)

func TestDashboardServesSameOriginAssets(t *testing.T) {
	t.Parallel()
	e := newApp(t)

	rec := get(t, e, "/dashboard")
	require.Equal(t, http.StatusMovedPermanently, rec.Code)
	require.Equal(t, "/dashboard/", rec.Header().Get("Location"))

	rec = get(t, e, "/dashboard/")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, "no-cache", rec.Header().Get("Cache-Control"))
	require.NotEmpty(t, rec.Header().Get("ETag"))
	requireSecurityHeaders(t, rec)
	index := rec.Body.String()
	require.Contains(t, index, `<script type="module" src="app.js"></script>`)

	// Only same-origin references, and each local one is served.
	refs := attrRef.FindAllStringSubmatch(index, -1)
	require.NotEmpty(t, refs)
	for _, m := range refs {
		ref := m[1]
		require.NotContains(t, strings.ToLower(ref), "http", "index.html refers to %q", ref)
		require.NotContains(t, ref, "//", "index.html refers to %q", ref)
		require.NotContains(t, ref, ":", "index.html refers to %q", ref)
		if ref != "" && !strings.HasPrefix(ref, "#") {
			require.Equal(t, http.StatusOK, get(t, e, "/dashboard/"+ref).Code, ref)
		}
	}
	// Nothing inline: the CSP would block it.
	scripts := scriptTag.FindAllStringSubmatch(index, -1)
	require.NotEmpty(t, scripts)
	for _, m := range scripts {
		require.Contains(t, m[1], "src=", "inline script %q", m[0])
		require.Empty(t, strings.TrimSpace(m[2]), "inline script %q", m[0])
	}
	require.NotRegexp(t, `(?i)<style|\sstyle\s*=|\son[a-z]+\s*=`, index)

	for path, ctype := range map[string]string{
		"/dashboard/app.js":      "text/javascript; charset=utf-8",
		"/dashboard/app.css":     "text/css; charset=utf-8",
		"/dashboard/index.html":  "text/html; charset=utf-8",
		"/dashboard/favicon.svg": "image/svg+xml",
	} {
		rec := get(t, e, path)
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.Equal(t, ctype, rec.Header().Get("Content-Type"), path)
		requireSecurityHeaders(t, rec)
		require.Equal(t, http.StatusNotModified, get(t, e, path, "If-None-Match", rec.Header().Get("ETag")).Code, path)
	}

	// The script builds the page from API data as text only, and keeps the token out of
	// localStorage.
	js := get(t, e, "/dashboard/app.js").Body.String()
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "localStorage"} {
		require.NotContains(t, js, sink)
	}
	require.Contains(t, js, "sessionStorage")

	for _, missing := range []string{"/dashboard/nope.js", "/dashboard/static/app.js", "/dashboard/../go.mod", "/dashboard/dashboard.go"} {
		rec := get(t, e, missing)
		require.Equal(t, http.StatusNotFound, rec.Code, missing)
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), missing)
	}
}
