// Package dashboard serves the operator dashboard: a static single page (HTML, CSS and vanilla
// JavaScript, no build step) embedded in the binary. The page itself needs no authentication;
// every API call it makes carries the operator's bearer token, which the operator pastes into
// the page and which stays in the tab's sessionStorage.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Path is where the dashboard is mounted.
const Path = "/dashboard"

// CSP allows only same-origin scripts, styles and API calls, no inline code, no framing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed static
var staticFS embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes is explicit rather than mime.TypeByExtension, whose answer depends on the
// host's mime tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// assets are the embedded files by name relative to static/, read once at start.
var assets = func() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // not served: only types we name
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[strings.TrimPrefix(p, "static/")] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("dashboard: read embedded files: " + err.Error())
	}
	return out
}()

// Register mounts the dashboard on e: GET (and HEAD) /dashboard/* serve the files, /dashboard
// redirects to /dashboard/.
func Register(e *echo.Echo) {
	methods := []string{http.MethodGet, http.MethodHead}
	e.Match(methods, Path, func(c echo.Context) error {
		setSecurityHeaders(c.Response().Header())
		return c.Redirect(http.StatusMovedPermanently, Path+"/")
	})
	e.Match(methods, Path+"/*", serve)
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// serve answers with one embedded file. The files are not fingerprinted, so browsers may keep
// them but must revalidate (no-cache + ETag): a new binary is seen on the next load, an
// unchanged one costs a 304.
func serve(c echo.Context) error {
	h := c.Response().Header()
	setSecurityHeaders(h)
	name := c.Param("*")
	if name == "" {
		name = "index.html"
	}
	a, ok := assets[name]
	if !ok {
		return echo.ErrNotFound
	}
	h.Set(echo.HeaderContentType, a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	// ServeContent answers If-None-Match with 304, handles HEAD and ranges; the zero time
	// leaves Last-Modified out (embedded files have no modification time).
	http.ServeContent(c.Response(), c.Request(), name, time.Time{}, bytes.NewReader(a.body))
	return nil
}
