package store

import "time"

// QueuedMessage is one message waiting in the outbound queue, with the state
// of each of its recipients. The body is kept apart (see QueueBody) so that
// listing the queue never loads message bodies.
type QueuedMessage struct {
	ID          uint64
	From        string // envelope sender; "" is the null sender
	Recipients  []QueuedRecipient
	Created     time.Time
	Attempts    int
	NextAttempt time.Time
	LastError   string
	DelayWarned bool // a delay notification has been sent
	// Kind tells the queue what the message is, for logs and bounce rules:
	// "" (ordinary mail), "dsn", "auto-reply", "forward".
	Kind string
}

// QueuedRecipient is one recipient of a queued message.
type QueuedRecipient struct {
	Address string
	State   RecipientState
	Reply   string // last reply from the remote server, or the local error
}

// RecipientState is where a queued recipient stands.
type RecipientState uint8

// Recipient states. A message leaves the queue when no recipient is Pending.
const (
	RecipientPending RecipientState = iota
	RecipientDelivered
	RecipientFailed
)

// NewQueuedMessage is a message to put on the outbound queue.
type NewQueuedMessage struct {
	From       string
	Recipients []string
	Body       []byte // CRLF line endings, as it will be sent
	Kind       string
}
