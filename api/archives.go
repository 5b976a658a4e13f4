package api

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/domain/audit"
)

// ArchivesPath serves offboarding archives to platform-admins.
const ArchivesPath = "/api/meta-agent/archives"

// archiveName is what offboarding names an archive: "<tenant id>-<run id>.tar.gz.age". Nothing
// else is served, and no name can leave the export folder (no slash, no dot-dot).
var archiveName = regexp.MustCompile(`^[a-z][a-z0-9-]{1,120}\.tar\.gz\.age$`)

// downloadArchive sends one offboarding archive as it is on disk: encrypted with age to the
// operators' recipients, so only a holder of the matching identity can read it. Every download
// is recorded in the platform audit chain before a byte is sent; without that record there is
// no download.
func (s *Server) downloadArchive(c echo.Context) error {
	name := c.Param("name")
	if !archiveName.MatchString(name) {
		return validationProblem(FieldError{Field: "name", Message: "is not an archive name (<tenant id>-<run id>.tar.gz.age)"})
	}
	if s.exportDir == "" {
		return newProblem(http.StatusNotFound, ProblemNotFound, "Not found", "this API process serves no archives (EXPORT_DIR)")
	}
	path := filepath.Join(s.exportDir, name)
	info, err := os.Stat(path)
	if err != nil || !info.Mode().IsRegular() {
		return newProblem(http.StatusNotFound, ProblemNotFound, "Not found", "no archive named "+name+" (deleted after its retention, or never written)")
	}
	if s.audit != nil {
		id, _ := c.Get(auditIDKey).(string)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), auditWriteTimeout)
		defer cancel()
		_, err := s.audit.Platform(ctx, audit.Event{
			ID: id + "/download", Actor: audit.Actor{Type: audit.ActorOperator, ID: operatorOf(c).Name},
			Action: "tenant.archive.download", Resource: "archive/" + name, Outcome: audit.OutcomeSuccess,
			RequestID: truncateText(c.Response().Header().Get(echo.HeaderXRequestID), 128),
			Details:   map[string]string{"bytes": strconv.FormatInt(info.Size(), 10), "writtenAt": info.ModTime().UTC().Format(time.RFC3339)},
		})
		if err != nil {
			s.logger.Error("archive download refused: its audit event could not be written", "archive", name, "err", err)
			return newProblem(http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable", "the download could not be audited; try again")
		}
	}
	return c.Attachment(path, name)
}
