package dkim

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the package doc comment true: dkim is a leaf.
func TestImports(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "postkasse.dev/postkasse/") && dep != "postkasse.dev/postkasse/dkim" {
			t.Errorf("dkim imports %s", dep)
		}
	}
}
