package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package pure: no other postkasse package, no
// protocol or storage library, nothing that opens sockets or files.
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
		switch {
		case strings.HasPrefix(imp, "postkasse.dev/"), strings.Contains(imp, "."),
			imp == "os", imp == "net", strings.HasPrefix(imp, "net/"), imp == "io/fs", imp == "syscall":
			t.Errorf("policy imports %s", imp)
		}
	}
}
