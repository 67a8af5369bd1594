// Package pgtest starts a private PostgreSQL cluster for tests: initdb into a
// temporary directory, the server on a free loopback port with its socket in
// that directory, one database per test. When the test process runs as root
// (initdb refuses root) the cluster runs as the unprivileged user "postgres".
//
// Without PostgreSQL's binaries the tests that need a database are skipped,
// except in CI (CI=true), where they fail: CI installs PostgreSQL, so a
// missing one is a broken set-up, not a reason to test less.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	bin    string
	dir    string // owned by the server's user; holds data/ and the socket
	cred   *syscall.Credential
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	nextDB atomic.Int64
}

// Main starts a cluster, runs the tests and stops the cluster, returning the
// exit code for os.Exit. *c is nil when PostgreSQL is not installed; DB then
// skips or fails each test that asks for a database.
func Main(m *testing.M, c **Cluster) int {
	bin := findBin()
	if bin == "" {
		return m.Run()
	}
	cl, err := Start(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	*c = cl
	code := m.Run()
	if err := cl.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
	}
	return code
}

// Own starts a cluster for one test, which may stop and start it (Halt,
// Resume); it is removed when the test ends. Without PostgreSQL it skips
// the test, or fails it when CI=true.
func Own(t testing.TB) *Cluster {
	t.Helper()
	bin := findBin()
	if bin == "" {
		missing(t)
	}
	c, err := Start(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func missing(t testing.TB) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal("PostgreSQL is not installed (no initdb found); CI must install it")
	}
	t.Skip("PostgreSQL is not installed (no initdb found)")
}

// findBin returns the directory of initdb and postgres: $PG_BIN, else the
// newest Debian installation under /usr/lib/postgresql, else $PATH.
func findBin() string {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		return dir
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start runs initdb and the server from the binaries in bin.
func Start(bin string) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir}
	if c.cred, err = serverUser(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", "postkasse",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if c.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.Resume(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// Resume starts the server (again, after Halt) and waits until it accepts
// connections.
func (c *Cluster) Resume() error {
	// fsync is off for this throwaway cluster only: the tests prove what
	// postkasse does, not what the disk does, and the machine is shared.
	// synchronous_commit keeps its default (on), as in production.
	c.cmd = exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data(), "-k", c.dir,
		"-p", strconv.Itoa(c.port), "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=300")
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	logFile, err := os.OpenFile(filepath.Join(c.dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	c.exited = exited
	go func() { c.cmd.Wait(); close(exited) }()
	if err := c.waitReady(30 * time.Second); err != nil {
		c.Halt()
		return err
	}
	return nil
}

// serverUser makes dir the server's and returns the credentials to run it
// with: the "postgres" user when we are root, nil (ourselves) otherwise.
func serverUser(dir string) (*syscall.Credential, error) {
	if os.Getuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the user postgres to run initdb: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady waits until the server accepts a connection.
func (c *Cluster) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		cancel()
		if err == nil {
			return conn.Close(context.Background())
		}
		select {
		case <-c.exited:
			log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
			return fmt.Errorf("postgres exited: %s", log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %v: %w", limit, err)
		}
	}
}

// DSN is the connection string of database name, through the socket.
func (c *Cluster) DSN(name string) string {
	return fmt.Sprintf("host=%s port=%d user=postkasse dbname=%s sslmode=disable", c.dir, c.port, name)
}

// Halt shuts the server down (fast shutdown: sessions are cut), keeping its
// data for Resume.
func (c *Cluster) Halt() error {
	c.Thaw() // a frozen server would not hear SIGINT
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
		return errors.New("postgres did not stop within 30 s; killed")
	}
}

// Freeze stops every process of the server (SIGSTOP) without closing a
// connection: the database neither answers nor refuses, as when it hangs
// or the network drops its packets. Thaw undoes it. Linux only (it finds
// the server's processes in /proc).
func (c *Cluster) Freeze() error {
	return c.signalAll(syscall.SIGSTOP)
}

// Thaw lets a frozen server go on (SIGCONT).
func (c *Cluster) Thaw() error {
	return c.signalAll(syscall.SIGCONT)
}

// signalAll signals the postmaster, then its children: each child starts
// a session of its own, so the process group does not reach them. A
// stopped postmaster starts no new ones.
func (c *Cluster) signalAll(sig syscall.Signal) error {
	pid := c.cmd.Process.Pid
	if err := syscall.Kill(pid, sig); err != nil {
		return err
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return fmt.Errorf("cannot list processes in /proc: %v", err)
	}
	for _, stat := range stats {
		b, err := os.ReadFile(stat)
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ")".
		_, rest, _ := strings.Cut(string(b), ") ")
		if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(stat)))
			syscall.Kill(child, sig)
		}
	}
	return nil
}

// Stop shuts the server down and removes its directory.
func (c *Cluster) Stop() error {
	defer os.RemoveAll(c.dir)
	if err := c.Halt(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// DB creates an empty database for the test and returns its DSN; the
// database is dropped when the test ends. Without a cluster it skips the
// test, or fails it when CI=true.
func DB(t testing.TB, c *Cluster) string {
	t.Helper()
	if c == nil {
		missing(t)
	}
	name := fmt.Sprintf("test_%d", c.nextDB.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return c.DSN(name)
}
