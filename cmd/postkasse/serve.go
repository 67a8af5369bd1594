package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/metrics"
	"postkasse.dev/postkasse/store"
)

// gracePeriod is how long SIGTERM waits for SMTP transactions in flight.
const gracePeriod = 30 * time.Second

// authFailureDelay holds back the answer to a refused login, as Dovecot
// does by default, so guessing passwords over one connection is slow.
const authFailureDelay = 2 * time.Second

func cmdServe(args []string, stderr io.Writer) int {
	return serveWith(args, stderr, serverOptions{})
}

// serveWith is `postkasse serve` with settings that are not in the file
// (serverOptions); the command itself uses none, a test's child process
// may (see TestMain).
func serveWith(args []string, stderr io.Writer, opts serverOptions) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", config.DefaultPath, "configuration file")
	debug := fs.Bool("debug", false, "log debug messages and raw protocol traces (which include credentials)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for measuring)")
	if fs.Parse(args) != nil {
		return 2
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "postkasse: %v\n", err)
		return 1
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		fmt.Fprintf(stderr, "postkasse: %v\n", err)
		return 1
	}
	defer func() {
		if err := stopProfile(); err != nil {
			log.Error("cpu profile", "err", err)
		}
	}()
	// From here a SIGTERM waits for the server to be up, then stops it
	// gracefully; /healthz says serving only once that is so.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	m := metrics.New(log)
	stopMetrics, err := startMetrics(cfg.Listen.Metrics, m, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer stopMetrics()
	opts.debug, opts.authFailureDelay, opts.metrics = *debug, authFailureDelay, m
	srv, err := newServer(cfg, log, opts)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	lns, err := openListeners(cfg)
	if err != nil {
		log.Error("cannot start", "err", err)
		srv.stop(time.Second)
		return 1
	}
	if err := srv.serve(lns); err != nil {
		log.Error("cannot start", "err", err)
		srv.stop(time.Second)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if ln, err := listenControl(filepath.Join(cfg.DataDir, controlSocketName)); err != nil {
		log.Warn("no control socket: `postkasse queue` will not reach this server", "err", err)
	} else {
		go serveControl(ctx, ln, srv, log)
	}
	notifySystemd("READY=1\nSTATUS=serving")
	log.Info("postkasse ready", "config", *path, "hostname", cfg.Hostname)

	for sig := range signals {
		if sig == syscall.SIGHUP {
			notifySystemd(reloadingState())
			if err := srv.reload(*path); err != nil {
				log.Error("reload refused: the running configuration stays in force", "err", err.Error())
			}
			notifySystemd("READY=1\nSTATUS=serving")
			continue
		}
		break
	}
	notifySystemd("STOPPING=1")
	log.Info("stopping: finishing transactions in flight")
	cancel() // the control socket first: commands then open the store themselves
	srv.stop(gracePeriod)
	log.Info("stopped")
	return 0
}

// The control socket's view of the server.

func (s *server) QueueList(ctx context.Context) ([]store.QueuedMessage, error) {
	return s.store.QueueList(ctx)
}

func (s *server) QueueRemove(ctx context.Context, id uint64) error {
	msg, err := s.store.QueueGet(ctx, id)
	if err == nil {
		err = s.store.QueueRemove(ctx, id)
	}
	if err != nil {
		return err
	}
	var waiting []string
	for _, r := range msg.Recipients {
		if r.State == store.RecipientPending {
			waiting = append(waiting, r.Address)
		}
	}
	s.log.Info("queued message deleted by the administrator", "part", "queue", "id", id, "from", msg.From, "recipients", waiting)
	return nil
}

func (s *server) Flush(ctx context.Context) error { return s.queue.Flush(ctx) }

// debugWriter is where raw protocol traces go: stderr with -debug, nowhere
// otherwise.
func debugWriter(on bool) io.Writer {
	if on {
		return os.Stderr
	}
	return nil
}
