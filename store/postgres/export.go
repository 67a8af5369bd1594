package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"postkasse.dev/postkasse/store"
)

// copyAppName is the application_name of copy-store's own connections, so
// that they do not count as a node's.
const copyAppName = "postkasse copy-store"

// serverAppName is the application_name postkasse's nodes connect with,
// unless their DSN names another.
const serverAppName = "postkasse"

// connectForCopy opens a small pool on dsn for Export or a Loader, after
// making sure no postkasse node is connected to the database (ErrInUse):
// a copy is made with every node stopped.
func connectForCopy(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password and all.
		return nil, fmt.Errorf("%w: not a PostgreSQL connection string", store.ErrInvalid)
	}
	nodes := cfg.ConnConfig.RuntimeParams["application_name"]
	if nodes == "" {
		nodes = serverAppName
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = copyAppName
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err == nil {
		err = noNodes(ctx, pool, nodes)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, err
	}
	return pool, nil
}

// nodeGone is how long noNodes waits for the sessions of nodes that have
// just stopped to leave pg_stat_activity: a closed connection's backend
// exits a moment after the client has gone.
const nodeGone = 3 * time.Second

// noNodes fails with store.ErrInUse while a session of a postkasse node
// (application_name nodes) is connected to the database.
func noNodes(ctx context.Context, pool *pgxpool.Pool, nodes string) error {
	deadline := time.Now().Add(nodeGone)
	for {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()`, nodes).Scan(&n)
		if err != nil || n == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d sessions of postkasse nodes are connected to the database", store.ErrInUse, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Export hands every record of the store in the database dsn names to fn,
// in the order store.Record describes, from one REPEATABLE READ read-only
// transaction: one consistent snapshot. Rows are read as they arrive, so
// bodies are never all in memory. It refuses with store.ErrInUse while a
// postkasse node is connected to the database. An error from fn stops the
// export and is returned.
func Export(ctx context.Context, dsn string, fn func(store.Record) error) error {
	pool, err := connectForCopy(ctx, dsn)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer pool.Close()
	var version int
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&version); err != nil {
		return fmt.Errorf("export: no postkasse store in this database: %w", err)
	}
	if version != len(migrations) {
		return fmt.Errorf("export: the store's schema is version %d, this postkasse's %d: run a server of this version on it once first", version, len(migrations))
	}
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		e := pgExporter{ctx: ctx, tx: tx, fn: fn}
		return e.run()
	})
}

// pgExporter walks one read transaction.
type pgExporter struct {
	ctx context.Context
	tx  pgx.Tx
	fn  func(store.Record) error
}

// each runs query and hands each row, scanned into dest, to fn.
func (e *pgExporter) each(query string, args []any, dest []any, fn func() error) error {
	rows, err := e.tx.Query(e.ctx, query, args...)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, dest, fn)
	return err
}

func (e *pgExporter) run() error {
	var last int64
	if err := e.tx.QueryRow(e.ctx, `SELECT value FROM meta WHERE key = 'uidvalidity'`).Scan(&last); err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	if err := e.fn(&store.MetaRecord{LastUIDValidity: uint32(last)}); err != nil {
		return err
	}
	var hash, body, search []byte // search: nil for NULL, a body without search data
	err := e.each(`SELECT hash, body, search FROM blobs ORDER BY hash`, nil, []any{&hash, &body, &search}, func() error {
		if len(hash) != 32 {
			return fmt.Errorf("body key %x: not a SHA-256", hash)
		}
		return e.fn(&store.BodyRecord{Hash: [32]byte(hash), Body: body, Search: search})
	})
	if err != nil {
		return fmt.Errorf("bodies: %w", err)
	}
	var accounts []store.AccountRecord
	var a store.AccountRecord
	err = e.each(`SELECT id, warned, next_folder FROM accounts ORDER BY id`, nil, []any{&a.ID, &a.Warned, &a.NextFolder}, func() error {
		accounts = append(accounts, a)
		return nil
	})
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	for i := range accounts {
		if err := e.account(&accounts[i]); err != nil {
			return fmt.Errorf("account %q: %w", accounts[i].ID, err)
		}
	}
	for _, step := range []func() error{e.subscriptions, e.queue, e.memories, e.digests, e.cards, e.cache} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// account hands out an account, its folders, their messages and the
// account's per-user \Seen.
func (e *pgExporter) account(a *store.AccountRecord) error {
	if err := e.fn(a); err != nil {
		return err
	}
	var folders []store.FolderRecord
	f := store.FolderRecord{Account: a.ID}
	var validity, next, recent int64
	err := e.each(`SELECT id, name, special_use, uid_validity, uid_next, recent_from FROM folders WHERE account = $1 ORDER BY id`,
		[]any{a.ID}, []any{&f.ID, &f.Name, &f.SpecialUse, &validity, &next, &recent}, func() error {
			f.UIDValidity, f.UIDNext, f.RecentFrom = uint32(validity), UID(next), UID(recent)
			folders = append(folders, f)
			return nil
		})
	if err != nil {
		return err
	}
	for i := range folders {
		if err := e.fn(&folders[i]); err != nil {
			return err
		}
	}
	for _, f := range folders {
		if err := e.messages(a.ID, f.ID); err != nil {
			return fmt.Errorf("folder %q: %w", f.Name, err)
		}
	}
	s := store.SeenRecord{Account: a.ID}
	var uid int64
	return e.each(`SELECT folder, uid, viewer, seen FROM seen WHERE account = $1 ORDER BY folder, uid, viewer`,
		[]any{a.ID}, []any{&s.Folder, &uid, &s.Viewer, &s.Seen}, func() error {
			s.UID = UID(uid)
			return e.fn(&s)
		})
}

func (e *pgExporter) messages(account string, folder uint64) error {
	m := store.MessageRecord{Account: account, Folder: folder}
	var uid, dateNS int64
	var fs store.FlagSet
	var hash []byte
	return e.each(`SELECT uid, flags, keywords, date_ns, size, hash, prefix, meta FROM messages
		WHERE account = $1 AND folder = $2 ORDER BY uid`, []any{account, folder},
		[]any{&uid, &fs.Bits, &fs.Keywords, &dateNS, &m.Size, &hash, &m.Prefix, &m.Meta}, func() error {
			if len(hash) != 32 {
				return fmt.Errorf("UID %d: body key %x: not a SHA-256", uid, hash)
			}
			m.UID, m.Date, m.Hash = UID(uid), time.Unix(0, dateNS), [32]byte(hash)
			m.Flags = fs.List()
			return e.fn(&m)
		})
}

func (e *pgExporter) subscriptions() error {
	var s store.SubscriptionRecord
	return e.each(`SELECT viewer, account, folder, subscribed FROM subscriptions ORDER BY viewer, account, folder`, nil,
		[]any{&s.Viewer, &s.Account, &s.Folder, &s.Subscribed}, func() error { return e.fn(&s) })
}

// queue hands out the outbound queue, each message with its body; claims
// are not carried (every node is stopped).
func (e *pgExporter) queue() error {
	var msg, body []byte
	return e.each(`SELECT msg::text, body FROM queue ORDER BY id`, nil, []any{&msg, &body}, func() error {
		m, err := decodeQueued(msg)
		if err != nil {
			return err
		}
		return e.fn(&store.QueueRecord{Message: m, Body: body})
	})
}

// memories hands out automatic-reply memories and connected-account
// progress.
func (e *pgExporter) memories() error {
	var r store.AutoReplyRecord
	var ns int64
	err := e.each(`SELECT key, last_ns FROM autoreplies ORDER BY key`, nil, []any{&r.Key, &ns}, func() error {
		r.Last = time.Unix(0, ns)
		return e.fn(&r)
	})
	if err != nil {
		return fmt.Errorf("automatic-reply memories: %w", err)
	}
	var p store.RemoteRecord
	var validity, last int64
	err = e.each(`SELECT key, uid_validity, last_uid FROM remote ORDER BY key`, nil, []any{&p.Key, &validity, &last}, func() error {
		p.State = store.RemoteState{UIDValidity: uint32(validity), LastUID: uint32(last)}
		return e.fn(&p)
	})
	if err != nil {
		return fmt.Errorf("connected-account progress: %w", err)
	}
	return nil
}

// digests hands out the digests of messages filed from connected accounts
// and of imported ones.
func (e *pgExporter) digests() error {
	var f store.RemoteFiledRecord
	err := e.each(`SELECT key, digest FROM remote_filed ORDER BY key, digest`, nil, []any{&f.Key, &f.Digest}, func() error { return e.fn(&f) })
	if err != nil {
		return fmt.Errorf("connected-account digests: %w", err)
	}
	var i store.ImportedRecord
	err = e.each(`SELECT account, digest FROM imported ORDER BY account, digest`, nil, []any{&i.Account, &i.Digest}, func() error { return e.fn(&i) })
	if err != nil {
		return fmt.Errorf("import digests: %w", err)
	}
	return nil
}

func (e *pgExporter) cards() error {
	var b store.CardBookRecord
	err := e.each(`SELECT account, book, counter FROM card_books ORDER BY account, book`, nil,
		[]any{&b.Book.Account, &b.Book.Name, &b.Counter}, func() error { return e.fn(&b) })
	if err != nil {
		return fmt.Errorf("address books: %w", err)
	}
	var c store.CardRecord
	var name []byte
	var modNS int64
	err = e.each(`SELECT account, book, name, stamp, modified_ns, deleted, data FROM cards ORDER BY account, book, name`, nil,
		[]any{&c.Book.Account, &c.Book.Name, &name, &c.Card.Stamp, &modNS, &c.Card.Deleted, &c.Card.Data}, func() error {
			c.Card.Name, c.Card.Modified = string(name), time.Unix(0, modNS)
			return e.fn(&c)
		})
	if err != nil {
		return fmt.Errorf("cards: %w", err)
	}
	return nil
}

func (e *pgExporter) cache() error {
	var c store.CacheRecord
	var key []byte
	err := e.each(`SELECT key, data FROM cache ORDER BY key`, nil, []any{&key, &c.Data}, func() error {
		c.Key = string(key)
		return e.fn(&c)
	})
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}
