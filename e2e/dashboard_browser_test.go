package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// browserWait bounds each wait for the page (a run to finish, a list to load): generous, since
// two cores may be busy with other tests; the test never asserts on how long anything takes.
const browserWait = 90 * time.Second

// TestDashboardInABrowser drives the real dashboard in headless Chromium against the API and a
// worker on the real servers, as an operator does: sign in with the token, register and onboard
// a standard tenant (no approval), see it become active (and its cell, when the API names it),
// suspend it, read its audit trail, read the overview, and on the Cells page drain a cell
// registered for the test. Each step checks what the page shows.
func TestDashboardInABrowser(t *testing.T) {
	chromium := chromiumFor(t)
	s := newStack(t, true)
	b := newBrowser(t, chromium)
	id := testenv.TenantID("browser")

	// Sign in: the overview is the first page.
	b.do("open the dashboard", chromedp.Navigate(s.url+"/dashboard/"), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#login-token"), token),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#overview-view")))
	b.waitFor("the overview loaded", `document.querySelector('#ov-generated').textContent.startsWith('as of')`)
	require.Contains(t, b.text("#ov-waiting"), "Nothing waits for an operator.", "the stack's task queue is new")
	require.Contains(t, b.text("#ov-recent"), "No operation in the last 24 hours.")
	before := b.stats()
	for _, status := range []string{"pending", "onboarding", "active", "suspended", "offboarding", "offboarded", "failed", "total"} {
		require.Contains(t, before, status)
	}

	// Register and onboard a standard tenant: the secret is shown once, then the operation.
	b.do("open the registration form", chromedp.Click(chromedp.CSS("#new-tenant")), chromedp.WaitVisible(chromedp.CSS("#register-form")))
	b.do("fill in the form",
		chromedp.SendKeys(chromedp.CSS("#r-tenantId"), id),
		chromedp.SendKeys(chromedp.CSS("#r-tenantName"), "Browser "+id),
		chromedp.SendKeys(chromedp.CSS("#r-contactEmail"), "ops@"+id+".test"))
	require.Equal(t, "standard", b.value("#r-tenantType"), "standard is the default type, and needs no approval")
	b.do("submit", chromedp.Click(chromedp.CSS("#register-submit")), chromedp.WaitVisible(chromedp.CSS("#secret-dialog")))
	require.Regexp(t, `^[0-9a-f]{64}$`, b.value("#secret-value"), "the tenant secret, shown once")
	require.Contains(t, b.text("#secret-context"), id)
	b.do("close the secret", chromedp.Click(chromedp.CSS("#secret-close")), chromedp.WaitNotVisible(chromedp.CSS("#secret-dialog")))

	// The list's search box finds the tenant by the beginning of its id, typed in capitals too,
	// among every other test's tenants; emptied, the list is whole again.
	b.do("search the list", chromedp.SendKeys(chromedp.CSS("#list-search"), strings.ToUpper(id)))
	b.waitFor("only the tenant searched for", `(() => { const rows = document.querySelectorAll('#tenant-rows tr');
		return rows.length === 1 && rows[0].dataset.id === `+jsString(id)+`; })()`)
	b.do("empty the search", chromedp.SendKeys(chromedp.CSS("#list-search"), strings.Repeat(kb.Backspace, len(id))))
	b.waitFor("the whole list again", `document.querySelectorAll('#tenant-rows tr').length > 1`)
	b.waitFor("the operation tab", `location.hash === `+jsString("#/tenants/"+id+"/operation"))
	b.waitFor("the tenant active", `document.querySelector('#t-status').textContent === 'active'`)
	require.Equal(t, "Browser "+id, b.text("#t-name"))
	b.waitFor("the finished onboarding", runStatusIs("completed"))
	require.Contains(t, b.text("#op-body"), workflows.OnboardWorkflow)
	onboard := s.currentRun(id)
	require.Equal(t, runURL(workflows.WorkflowID(id), onboard), b.attr("#op-body a.temporal-link", "href"), "linked to its run in the Web UI")
	// The tenant's cell, on its page, when the API's answer names it.
	code, rec := s.do(http.MethodGet, api.TenantsPath+"/"+id, "")
	require.Equal(t, http.StatusOK, code, rec)
	if cell, _ := rec["cellId"].(string); cell != "" {
		b.waitFor("the tenant's cell shown", `document.querySelector('#t-cell')?.textContent === `+jsString(cell))
	}
	// Not looked for in the tenant list: that list is paged, and under `make test` the test
	// database holds the other packages' tenants too, so a new one may be on a later page.

	// Suspend, with a reason, from the confirmation dialog.
	b.do("suspend",
		chromedp.Click(chromedp.Search(`//div[@id="t-actions"]/button[normalize-space()="Suspend"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
		chromedp.SendKeys(chromedp.CSS("#confirm-reason"), "browser test"),
		chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.waitFor("the tenant suspended", `document.querySelector('#t-status').textContent === 'suspended'`)
	b.waitFor("the suspension completed", `document.querySelector('#op-body').textContent.includes(`+jsString(workflows.SuspendWorkflow)+`) && `+runStatusIs("completed"))
	require.Contains(t, b.text("#t-reason"), "browser test")
	require.Equal(t, tenant.StatusSuspended, s.status(id), "the API agrees with the page")

	// The audit tab: the onboarding request and the suspension, from this operator.
	b.do("open the audit tab", chromedp.Click(chromedp.CSS("#tab-link-audit")), chromedp.WaitVisible(chromedp.CSS("#tab-audit")))
	b.waitFor("audit events", `document.querySelectorAll('#audit-rows tr').length > 0`)
	audit := b.text("#audit-rows")
	for _, action := range []string{"tenant.suspend.request", "tenant.suspend", "tenant.onboard"} {
		require.Contains(t, audit, action)
	}
	require.Contains(t, audit, "bootstrap", "the operator who asked")
	require.Contains(t, audit, "browser test", "the reason given")

	// The overview: two completed operations on this stack's queue, each linked to its run,
	// and the tenant counted as suspended.
	b.do("open the overview", chromedp.Click(chromedp.CSS("#overview-link")), chromedp.WaitVisible(chromedp.CSS("#overview-view")))
	b.waitFor("the overview reloaded", `document.querySelectorAll('#ov-recent-table tbody tr').length === 2`)
	require.Equal(t, "2", b.text(`#ov-totals li[data-outcome="completed"] strong`))
	require.Contains(t, b.text("#ov-types"), workflows.SuspendWorkflow)
	suspend := s.currentRun(id)
	for _, run := range []string{onboard, suspend} {
		row := `#ov-recent-table tr[data-run="` + run + `"]`
		require.Contains(t, b.text(row), id)
		require.Contains(t, b.text(row), "completed")
		require.Equal(t, runURL(workflows.WorkflowID(id), run), b.attr(row+" a.temporal-link", "href"))
	}
	after := b.stats()
	require.GreaterOrEqual(t, after["suspended"], 1)
	sum := 0
	for status, n := range after {
		if status != "total" {
			sum += n
		}
	}
	require.Equal(t, after["total"], sum, "the total is the sum of the statuses shown")

	// The Cells page: the default cell, and one registered for this test on cell-2's stores
	// (closed at once, in a region of its own, so that no other test's onboarding lands on it),
	// which this platform admin drains from its row.
	pg, password := cell2Postgres(t)
	cell := "e2e" + strings.ReplaceAll(testenv.TenantID("c"), "-", "")
	code, reg := s.do(http.MethodPost, api.CellsPath, `{"cellId":`+jsString(cell)+`,"region":`+jsString(cell)+`,"kind":"dedicated","capacity":5,`+
		`"postgresUrl":`+jsString(pg)+`,"mongoUrl":`+jsString(testenv.Cell2MongoURI)+`,"redisUrl":`+jsString(testenv.Cell2RedisURL)+`}`)
	require.Equal(t, http.StatusCreated, code, reg)
	t.Cleanup(func() {
		s.do(http.MethodPost, api.CellsPath+"/"+cell+"/close", "")
		s.do(http.MethodDelete, api.CellsPath+"/"+cell, "")
	})
	code, reg = s.do(http.MethodPost, api.CellsPath+"/"+cell+"/close", "")
	require.Equal(t, http.StatusOK, code, reg)
	b.do("open the cells page", chromedp.Click(chromedp.CSS("#cells-link")), chromedp.WaitVisible(chromedp.CSS("#cells-view")))
	row := `#cells-table tr[data-cell="` + cell + `"]`
	b.waitFor("the cells listed", `document.querySelector(`+jsString(row)+`) !== null`)
	mine := b.text(row)
	for _, want := range []string{cell, "0 / 5", "closed", "dedicated", "healthy", "postgres://127.0.0.1:5442/tenancy_test"} {
		require.Contains(t, mine, want)
	}
	def := b.text(`#cells-table tr[data-cell="default"]`)
	for _, want := range []string{"default", "local", "pooled", "healthy", "the deployment's own stores"} {
		require.Contains(t, def, want)
	}
	require.NotContains(t, b.text("#cells-view"), password, "no store's password on the page")
	b.do("drain the cell",
		chromedp.Click(chromedp.CSS(row+` button[data-action="drain"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
		chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.waitFor("the cell draining", `document.querySelector(`+jsString(row)+`).textContent.includes('draining')`)
	require.Contains(t, b.text("#cells-error"), "is draining")
	code, reg = s.do(http.MethodGet, api.CellsPath+"/"+cell, "")
	require.Equal(t, http.StatusOK, code, reg)
	require.Equal(t, "draining", reg["state"], "the API agrees with the page")
}

// cell2Postgres is cell-2's PostgreSQL as its application role, with the cell migrations
// applied (testenv.CellPostgresOf).
func cell2Postgres(t *testing.T) (dsn, password string) {
	t.Helper()
	c := testenv.CellPostgresOf(t, 2)
	return c.AppURL, c.Password
}

// TestDashboardApprovesAndRejects: two enterprise onboardings requested by one operator wait
// for approval on the overview; a second platform admin, signed in to the dashboard, approves
// one and rejects the other from their cards. The approved tenant becomes active, the rejected
// one failed, and the audit trail names the second admin.
func TestDashboardApprovesAndRejects(t *testing.T) {
	chromium := chromiumFor(t)
	s := newStack(t, true)
	approver := "second-admin-" + testenv.TenantID("b")
	second, err := operators.New(testenv.AppPool(t), "").Create(context.Background(), approver, operators.RoleAdmin)
	require.NoError(t, err)

	// Requested by the stack's bootstrap operator, through the API.
	approved, rejected := testenv.TenantID("approve"), testenv.TenantID("reject")
	runs := map[string]map[string]any{}
	for _, id := range []string{approved, rejected} {
		code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "enterprise"))
		require.Equal(t, http.StatusAccepted, code, body)
		runs[id] = body
	}

	b := newBrowser(t, chromium)
	b.do("open the dashboard", chromedp.Navigate(s.url+"/dashboard/"), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.do("sign in as the second admin",
		chromedp.SendKeys(chromedp.CSS("#login-token"), second),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#overview-view")))
	card := func(id string) string { return `#ov-waiting .waiting[data-tenant="` + id + `"]` }
	for _, id := range []string{approved, rejected} {
		b.waitFor("the waiting card of "+id, `document.querySelector(`+jsString(card(id)+`[data-state="awaiting_approval"]`)+`) !== null`)
		require.Contains(t, b.text(card(id)), "Requested by bootstrap")
	}

	decide := func(id, action, label string) {
		b.do(action+" "+id,
			chromedp.Click(chromedp.CSS(card(id)+` button[data-action="`+action+`"]`)),
			chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
		require.Contains(t, b.text("#confirm-dialog"), id)
		b.do("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")), chromedp.WaitNotVisible(chromedp.CSS("#confirm-dialog")))
		b.waitFor("the note of "+id, `document.querySelector('#ov-error').textContent.includes(`+jsString(label+id)+`)`)
	}
	decide(approved, "approve", "Approved: ")
	require.NoError(t, s.wait(runs[approved]))
	require.Equal(t, tenant.StatusActive, s.status(approved))
	decide(rejected, "reject", "Rejected: ")
	require.Error(t, s.wait(runs[rejected]), "a rejected onboarding fails")
	require.Equal(t, tenant.StatusFailed, s.status(rejected))

	b.waitFor("no card left", `document.querySelector(`+jsString(card(approved))+`) === null && document.querySelector(`+jsString(card(rejected))+`) === null`)
	code, trail := s.do(http.MethodGet, api.TenantsPath+"/"+approved+"/audit?action=tenant.approve", "")
	require.Equal(t, http.StatusOK, code, trail)
	require.Contains(t, fmt.Sprint(trail["items"]), approver, "the approval is audited under the second admin's name")
}

// chromiumFor skips a browser test under -short, fails it with the install hint when Debian's
// Chromium is missing, marks it parallel and returns Chromium's path.
func chromiumFor(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: needs Chromium and the real servers (run `make test`)")
	}
	chromium, err := exec.LookPath("chromium")
	require.NoError(t, err, "Chromium is needed for the browser test: apt-get install -y --no-install-recommends chromium (make test does: scripts/packages.sh test)")
	t.Parallel()
	return chromium
}

// browser is one headless Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Debian's Chromium headless, with what a closed network needs (no
// background connections to outside hosts) and a profile of its own.
func newBrowser(t *testing.T, path string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser, whose life is that of the context it runs with: the
	// tab's, not one of the bounded contexts of the steps.
	require.NoError(t, chromedp.Do(ctx), "start Chromium")
	return &browser{t: t, ctx: ctx}
}

// do runs steps, each bounded by browserWait; on failure it logs what the page shows.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

// waitFor waits until the JavaScript expression is truthy.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	b.do(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(browserWait)))
}

func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + '\n' + document.body.innerText`))
	b.t.Fatalf("%s: %v\npage:\n%s", what, err, page)
}

func (b *browser) text(css string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(css)))
	if err != nil {
		b.fail("read "+css, err)
	}
	return v
}

func (b *browser) value(css string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(css)))
	if err != nil {
		b.fail("read "+css, err)
	}
	return v
}

func (b *browser) attr(css, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(css), name))
	if err != nil {
		b.fail("read "+css+" "+name, err)
	}
	return v.Value
}

// stats reads the overview's tenant counts, by status ("total" for all).
func (b *browser) stats() map[string]int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(Object.fromEntries([...document.querySelectorAll('#ov-tenants .stat')].map((s) => [s.dataset.status, s.querySelector('.stat-n').textContent])))`))
	if err != nil {
		b.fail("read the tenant counts", err)
	}
	var texts map[string]string
	require.NoError(b.t, json.Unmarshal([]byte(raw), &texts))
	out := map[string]int{}
	for k, v := range texts {
		n, err := strconv.Atoi(v)
		require.NoError(b.t, err, "count of %s: %q", k, v)
		out[k] = n
	}
	return out
}

// runURL is where the dashboard links a run: the Temporal Web UI at its default address, the
// workflow id escaped as the page's encodeURIComponent does (its ':').
func runURL(workflowID, runID string) string {
	return api.DefaultTemporalUIURL + "/namespaces/default/workflows/" + strings.ReplaceAll(workflowID, ":", "%3A") + "/" + runID
}

// runStatusIs is a JavaScript test of the operation tab's "Run status".
func runStatusIs(status string) string {
	return `[...document.querySelectorAll('#op-body dt')].some((dt) => dt.textContent === 'Run status' && dt.nextElementSibling.textContent === ` + jsString(status) + `)`
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// currentRun is the run id of the tenant's latest lifecycle operation, from the API.
func (s *stack) currentRun(id string) string {
	s.t.Helper()
	code, body := s.do(http.MethodGet, api.TenantsPath+"/"+id+"/operations/current", "")
	require.Equal(s.t, http.StatusOK, code, body)
	return body["runId"].(string)
}
