package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Store is [store]: where the mail is kept (SPEC §3, §13).
type Store struct {
	// Backend is "bbolt" (the default: data_dir/mail.db on this machine)
	// or "postgres" (a PostgreSQL database that several servers share).
	Backend string
	// DSN names the PostgreSQL database, in libpq's URL or keyword form;
	// set exactly when Backend is "postgres". It may hold a password: show
	// Where instead.
	DSN string
	// Where says what DSN names without its password (user, host, port,
	// database), for `postkasse check` and logs; "" for bbolt.
	Where string
}

// Backends of [store].
const (
	BackendBbolt    = "bbolt"
	BackendPostgres = "postgres"
)

type rawStore struct {
	Backend string `toml:"backend"`
	DSN     string `toml:"dsn"`
}

// store checks [store]. The DSN is parsed with pgx's own parser, the one
// the store opens it with, so a DSN that passes here is one the store
// reads the same way; nothing is connected to.
func (v *validator) store(raw *rawConfig, cfg *Config) {
	s := Store{Backend: strings.ToLower(strings.TrimSpace(raw.Store.Backend)), DSN: strings.TrimSpace(raw.Store.DSN)}
	switch s.Backend {
	case "":
		s.Backend = BackendBbolt
		fallthrough
	case BackendBbolt:
		if s.DSN != "" {
			v.errorf("store.dsn", "is only for backend = \"postgres\"")
		}
	case BackendPostgres:
		if s.DSN == "" {
			v.errorf("store.dsn", "must name the PostgreSQL database, e.g. \"postgres://postkasse@db.example.org/postkasse\"")
			break
		}
		where, err := DSNWhere(s.DSN)
		if err != nil {
			v.errorf("store.dsn", "%v", err)
			break
		}
		s.Where = where
	default:
		v.errorf("store.backend", "%q is neither \"bbolt\" nor \"postgres\"", raw.Store.Backend)
	}
	cfg.Store = s
}

// DSNWhere says what a PostgreSQL DSN names without its password (user,
// host, port, database), as Store.Where does; an error, which never quotes
// the DSN, when pgx cannot read it.
func DSNWhere(dsn string) (string, error) {
	pc, err := pgconn.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password and all.
		return "", errors.New("is not a PostgreSQL connection string (libpq's URL or key=value form)")
	}
	return fmt.Sprintf("%s@%s:%d/%s", pc.User, pc.Host, pc.Port, pc.Database), nil
}
