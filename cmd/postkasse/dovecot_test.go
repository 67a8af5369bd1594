package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool finds a program a test runs; without it the test is skipped,
// except in CI (CI=true), where .ci/run installs it and its absence fails.
func needTool(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/lib/dovecot/", "/usr/sbin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (.ci/run installs it)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// dovecot is a private Dovecot with one user, "tester", whose mail is the
// Maildir at mail: no listeners, only the auth service that doveadm and
// dovecot-lda need. Dovecot does not serve mail as root, so the mail
// belongs to nobody (65534).
type dovecot struct {
	t       *testing.T
	dir     string
	conf    string
	mail    string
	doveadm string
	lda     string
}

func startDovecot(t *testing.T) *dovecot {
	t.Helper()
	master := needTool(t, "dovecot")
	d := &dovecot{t: t, doveadm: needTool(t, "doveadm"), lda: needTool(t, "dovecot-lda")}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the Dovecot tests run as root in CI")
		}
		t.Skip("the private Dovecot needs root")
	}
	// Dovecot's user must reach the files: a directory of its own, open
	// to it, with a short path for the sockets.
	dir, err := os.MkdirTemp("", "pkdv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	d.dir, d.conf, d.mail = dir, filepath.Join(dir, "dovecot.conf"), filepath.Join(dir, "Maildir")
	d.writeConf(d.mail)
	cmd := exec.Command(master, "-F", "-c", d.conf)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(filepath.Join(dir, "run", "auth-userdb")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the private Dovecot did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

func (d *dovecot) writeConf(mail string) {
	conf := `protocols =
ssl = no
log_path = ` + filepath.Join(d.dir, "dovecot.log") + `
base_dir = ` + filepath.Join(d.dir, "run") + `
state_dir = ` + filepath.Join(d.dir, "state") + `
mail_location = maildir:` + mail + `
passdb {
  driver = static
  args = password=x
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=` + filepath.Join(d.dir, "home") + `
}
`
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Chown(d.dir, 65534, 65534); err != nil {
		d.t.Fatal(err)
	}
}

// deliver files a message into a folder with dovecot-lda.
func (d *dovecot) deliver(folder, msg string) {
	d.t.Helper()
	cmd := exec.Command(d.lda, "-c", d.conf, "-d", "tester", "-m", folder, "-f", "sender@example.org")
	cmd.Stdin = strings.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		d.t.Fatalf("dovecot-lda: %v %s", err, out)
	}
}

// adm runs doveadm for the tester, with settings overridden by opts
// ("mail_location=...").
func (d *dovecot) adm(opts []string, args ...string) string {
	d.t.Helper()
	full := []string{"-c", d.conf}
	for _, o := range opts {
		full = append(full, "-o", o)
	}
	words := 1 // the command's name, before its options
	if args[0] == "mailbox" || args[0] == "flags" {
		words = 2
	}
	full = append(full, args[:words]...)
	full = append(full, "-u", "tester")
	full = append(full, args[words:]...)
	out, err := exec.Command(d.doveadm, full...).CombinedOutput()
	if err != nil {
		d.t.Fatalf("doveadm %q: %v %s", args, err, out)
	}
	return string(out)
}

// chownTree gives a tree to Dovecot's user.
func chownTree(t *testing.T, root string) {
	t.Helper()
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 65534, 65534)
	})
	if err != nil {
		t.Fatal(err)
	}
}
