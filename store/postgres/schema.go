package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, applied in order; version N is
// migrations[N-1]. A released migration is never edited: a change is a new
// entry.
//
// Bodies are bytea, not large objects: a body is read and written whole
// with its row in one statement, TOAST compresses and stores it out of line
// (mail is text and compresses well), it is deleted with its row and travels
// with pg_dump, COPY and replication like any value. Large objects would need
// a round trip per open/read/close, their own permissions, and vacuumlo for
// the ones a crash leaves behind; they pay only past bytea's 1 GB limit, far
// beyond any message a mail server accepts.
//
// Names are COLLATE "C" so folders list in byte order, as in bbolt. The
// callers' memory keys join their parts with NUL bytes, which text cannot
// hold: they are bytea.
var migrations = []string{
	`
CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO meta VALUES ('uidvalidity', 0);

CREATE TABLE accounts (
	id          text COLLATE "C" PRIMARY KEY,
	usage       bigint NOT NULL DEFAULT 0,
	warned      boolean NOT NULL DEFAULT false,
	next_folder bigint NOT NULL DEFAULT 1
);

CREATE TABLE folders (
	account      text COLLATE "C" NOT NULL REFERENCES accounts,
	id           bigint NOT NULL,
	name         text COLLATE "C" NOT NULL,
	special_use  text NOT NULL DEFAULT '',
	uid_validity bigint NOT NULL,
	uid_next     bigint NOT NULL DEFAULT 1,
	recent_from  bigint NOT NULL DEFAULT 1,
	messages     bigint NOT NULL DEFAULT 0,
	unseen       bigint NOT NULL DEFAULT 0,
	size         bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (account, id),
	UNIQUE (account, name)
);

CREATE TABLE blobs (
	hash bytea PRIMARY KEY,
	refs bigint NOT NULL,
	body bytea NOT NULL
);

CREATE TABLE messages (
	account  text COLLATE "C" NOT NULL,
	folder   bigint NOT NULL,
	uid      bigint NOT NULL,
	flags    integer NOT NULL,
	keywords text[] NOT NULL DEFAULT '{}',
	date_ns  bigint NOT NULL,
	size     bigint NOT NULL,
	hash     bytea NOT NULL,
	prefix   bytea NOT NULL,
	meta     bytea NOT NULL,
	PRIMARY KEY (account, folder, uid),
	FOREIGN KEY (account, folder) REFERENCES folders
);

CREATE TABLE seen (
	account text COLLATE "C" NOT NULL,
	folder  bigint NOT NULL,
	uid     bigint NOT NULL,
	viewer  text COLLATE "C" NOT NULL,
	seen    boolean NOT NULL,
	PRIMARY KEY (account, folder, uid, viewer)
);

CREATE TABLE subscriptions (
	viewer     text COLLATE "C" NOT NULL,
	account    text COLLATE "C" NOT NULL,
	folder     text COLLATE "C" NOT NULL,
	subscribed boolean NOT NULL,
	PRIMARY KEY (viewer, account, folder)
);

-- folder_seq outlives its folder (folder ids are never reused within an
-- account), so the change that deleted a folder keeps its place.
CREATE TABLE folder_seq (
	account text COLLATE "C" NOT NULL,
	folder  bigint NOT NULL,
	seq     bigint NOT NULL,
	PRIMARY KEY (account, folder)
);

CREATE TABLE changes (
	account text COLLATE "C" NOT NULL,
	folder  bigint NOT NULL,
	seq     bigint NOT NULL,
	token   bigint NOT NULL, -- the writing attempt's (see feed.go)
	created timestamptz NOT NULL DEFAULT now(),
	data    jsonb NOT NULL,
	PRIMARY KEY (account, folder, seq)
);
CREATE INDEX changes_created ON changes (created);

CREATE TABLE queue (
	id              bigserial PRIMARY KEY,
	msg             jsonb NOT NULL,
	next_attempt_ns bigint NOT NULL,
	body            bytea NOT NULL,
	claimed_by      text,
	lease_until     timestamptz
);
CREATE INDEX queue_due ON queue (next_attempt_ns, id);

CREATE TABLE autoreplies (key bytea PRIMARY KEY, last_ns bigint NOT NULL);

CREATE TABLE remote (
	key          bytea PRIMARY KEY,
	uid_validity bigint NOT NULL,
	last_uid     bigint NOT NULL
);

CREATE TABLE remote_filed (
	key    bytea NOT NULL,
	digest bytea NOT NULL,
	PRIMARY KEY (key, digest)
);
`,
	// Version 2: address books (cards.go) and the cache (cache.go). Card
	// names and cache keys are the callers' and may hold any byte: bytea,
	// which also sorts byte by byte as bbolt's keys do.
	`
CREATE TABLE card_books (
	account text COLLATE "C" NOT NULL,
	book    text COLLATE "C" NOT NULL,
	counter bigint NOT NULL,
	PRIMARY KEY (account, book)
);

CREATE TABLE cards (
	account     text COLLATE "C" NOT NULL,
	book        text COLLATE "C" NOT NULL,
	name        bytea NOT NULL,
	stamp       bigint NOT NULL,
	modified_ns bigint NOT NULL,
	deleted     boolean NOT NULL,
	data        bytea NOT NULL,
	PRIMARY KEY (account, book, name)
);

CREATE TABLE cache (key bytea PRIMARY KEY, data bytea NOT NULL);
`,
	// Version 3: the digests of imported messages (Import), per account,
	// so a second run of an import files nothing twice.
	`
CREATE TABLE imported (
	account text COLLATE "C" NOT NULL,
	digest  bytea NOT NULL,
	PRIMARY KEY (account, digest)
);
`,
	// Version 4: Options.SearchData's result, once per body in the body's
	// row (NULL until computed), so it goes with the last reference.
	`
ALTER TABLE blobs ADD COLUMN search bytea;
`,
}

// migrationLock is the advisory lock key under which nodes migrate, so that
// several starting at once apply each migration exactly once.
const migrationLock = 0x706b7374 // "pkst"

// migrate brings the schema to the newest version in one transaction.
// It refuses a database whose schema is newer than this program knows.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&have); err != nil {
			return err
		}
		if have > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this postkasse knows (%d)", have, len(migrations))
		}
		for v := have + 1; v <= len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("schema version %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_version VALUES ($1)`, v); err != nil {
				return err
			}
		}
		return nil
	})
}
