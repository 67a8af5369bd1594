package srs

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package pure: no other postkasse package and
// no third-party or I/O package.
func TestDependencies(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(goTool, "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.Contains(imp, ".") || imp == "os" || imp == "net" || strings.HasPrefix(imp, "net/") {
			t.Errorf("srs imports %s", imp)
		}
	}
}
