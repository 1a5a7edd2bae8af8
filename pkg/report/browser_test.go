package report

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestHTMLReportInABrowser opens the report of a real failing run in
// headless Chromium and checks what a person sees: the failed spec's
// heatmap cell is red, and clicking it opens the failure's drill-down with
// its message. The screenshot goes to reports/report-check.png.
func TestHTMLReportInABrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("needs headless Chromium to check the HTML report: install Debian's chromium package (apt-get install chromium); .ci/run does")
	}
	run, err := LoadRun(skewedRun)
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "index.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := Merge([]CellRun{run}).WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000),
		// A container host: /dev/shm is small, and there is no D-Bus or crash handler to talk to.
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-breakpad", true), chromedp.Flag("disable-crash-reporter", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	// The failed ClusterIP spread spec's row, its one cell.
	cell := `//table[@id="heatmap"]//tr[td[1][text()="` + clusterIPSpread + `"]]/td[3]`
	js := func(expr string) string {
		return `(() => { const cell = document.evaluate('` + cell + `', document, null, 9, null).singleNodeValue; ` + expr + ` })()`
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitVisible(cell)); err != nil {
		t.Fatalf("opening %s in Chromium: %v", page, err)
	}
	colour, err := chromedp.Run(ctx, chromedp.Evaluate[string](js(`return getComputedStyle(cell).backgroundColor`)))
	if err != nil {
		t.Fatal(err)
	}
	anchor, err := chromedp.Run(ctx, chromedp.Evaluate[string](js(`return cell.querySelector("a").getAttribute("href")`)))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(cell+"/a")); err != nil {
		t.Fatalf("clicking the heatmap cell: %v", err)
	}
	details := `document.getElementById(location.hash.slice(1))`
	open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](details+` !== null && `+details+`.open`))
	if err != nil {
		t.Fatal(err)
	}
	visible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](details+`.querySelector("pre.message").getBoundingClientRect().height > 0`))
	if err != nil {
		t.Fatal(err)
	}
	message, err := chromedp.Run(ctx, chromedp.Evaluate[string](details+`.querySelector("pre.message").innerText`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if colour != "rgb(214, 47, 47)" {
		t.Errorf("the heatmap cell of the failed spec %q has background %s; want red rgb(214, 47, 47)", clusterIPSpread, colour)
	}
	if !open || !visible || !strings.HasPrefix(message, "ClusterIP http://") {
		t.Errorf("clicking the red cell (%s) must open the failure's details and show its message: open %v, message visible %v, message %.60q", anchor, open, visible, message)
	}
	out := filepath.Join("..", "..", "reports", "report-check.png")
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
}
