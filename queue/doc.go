// Package queue delivers postkasse's outbound mail: it takes messages from the
// durable queue in the store, looks up where each recipient domain receives
// mail (or uses the smarthost), talks SMTP to it with opportunistic STARTTLS
// and PIPELINING where offered, one connection per destination,
// records per-recipient results, retries transient failures with backoff, and
// sends delivery status notifications (RFC 3464) for permanent failures,
// expiry and long delays.
//
// The queue reaches its storage through the Storage interface (implemented by
// *store.Store) and only uses package store for its record types. Its DNS
// lookups go through the server's one resolver (package resolver), handed in
// as Options.DNS. It must not
// import the protocol packages (smtp, imap), policy or config: main hands it
// an Options value.
package queue
