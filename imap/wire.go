package imap

import (
	"bytes"
	"errors"
	"net"
	"sync"

	goimap "github.com/emersion/go-imap/v2"
)

// go-imap beta.9 mishandles three inputs it cannot take, instead of
// answering them:
//
//   - A literal larger than 4096 bytes in any command but APPEND:
//     imapwire.Decoder.Literal drops the TOOBIG error of the server's
//     checkBufferedLiteral and reads on as if an atom followed, so a
//     synchronizing literal ({N}) waits for data the client will never send
//     until the 30 s command timeout, and the data of a non-synchronizing
//     one ({N+}) is read as further commands.
//   - A quoted string broken by CRLF: imapwire.Decoder.Quoted takes CR and
//     LF as string bytes and waits for the closing quote.
//   - An APPEND whose non-synchronizing literal is over the append limit:
//     imapserver's handleAppend answers NO [TOOBIG] without reading the
//     data, which it then reads as commands.
//
// wireConn sits between the connection and go-imap and follows only the
// framing of what the client sends (lines, literals, quoted strings). When
// a line ends in one of those ways, it hands go-imap the line and then,
// instead of further bytes, a read error that is a *goimap.Error: go-imap
// answers it with its own tagged reply (BAD, or the NO [TOOBIG] it already
// has for APPEND), from its own goroutine and
// under its own write lock, so nothing is ever written into another
// response. What the client sent after that line is dropped: the
// connection ends with BYE, since the client's next bytes (literal data it
// sent ahead) cannot be told from commands.
//
// A synchronizing literal's data follows only if the server sent "+", so
// wireConn also follows the framing of what the server writes, to see
// whether it did. After STARTTLS it steps aside: it would only see
// ciphertext (on implicit TLS it sits above TLS and stays).
type wireConn struct {
	net.Conn
	appendLimit int64

	mu      sync.Mutex
	in, out framer
	tag     string // the current command's tag and name
	name    string
	ready   []byte // scanned client bytes go-imap may read
	pending []byte // client bytes not yet scanned, or held
	readErr error  // the connection's read error, once pending is empty
	buf     []byte
	passive bool // after STARTTLS

	// A synchronizing literal go-imap has not yet answered: held until
	// it sends "+" (data follows) or the tagged reply (no data follows).
	holding  bool
	heldTag  string
	heldSize int64

	reject    *goimap.Error // what go-imap's next reads fail with
	rejectTag string
	answered  bool // go-imap wrote its tagged reply to rejectTag
	byeSeen   bool
	inIdle    bool // the rejected line ended an IDLE: no BYE of ours
}

// bufferedLiteralLimit is go-imap's limit on a literal it buffers (every
// literal but APPEND's message): imapserver's checkBufferedLiteral.
const bufferedLiteralLimit = 4096

var (
	errWireLiteralTooBig = &goimap.Error{Type: goimap.StatusResponseTypeBad, Code: goimap.ResponseCodeTooBig, Text: "Literals are limited to 4096 bytes for this command"}
	errWireBrokenQuote   = &goimap.Error{Type: goimap.StatusResponseTypeBad, Code: goimap.ResponseCodeClientBug, Text: "Quoted string broken by a line end"}
	errWireAppendTooBig  = &goimap.Error{Type: goimap.StatusResponseTypeBad, Code: goimap.ResponseCodeTooBig, Text: "Message is larger than the append limit"}
)

// isWireError tells the errors wireConn makes go-imap read.
func isWireError(err error) bool {
	return errors.Is(err, errWireLiteralTooBig) || errors.Is(err, errWireBrokenQuote) || errors.Is(err, errWireAppendTooBig)
}

// newWireConn wraps c; appendLimit is the session's APPEND limit, as
// go-imap applies it.
func newWireConn(c net.Conn, appendLimit int64) *wireConn {
	return &wireConn{Conn: c, appendLimit: appendLimit, in: framer{quotes: true}}
}

// Read hands go-imap the client's bytes, scanned, up to a line it cannot
// take; then it fails with the reply for that line.
func (c *wireConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	for {
		if len(c.ready) > 0 {
			n := copy(p, c.ready)
			c.ready = c.ready[n:]
			c.mu.Unlock()
			return n, nil
		}
		if c.reject != nil {
			c.sayBye()
			c.mu.Unlock()
			return 0, c.reject
		}
		if c.holding {
			// go-imap reads on without a "+" or a reply for the literal:
			// it did not take the line as announcing one.
			c.endHold(false)
		}
		if len(c.pending) > 0 {
			c.scan()
			continue
		}
		if c.readErr != nil {
			err := c.readErr
			c.readErr = nil
			c.mu.Unlock()
			return 0, err
		}
		if c.passive {
			c.mu.Unlock()
			return c.Conn.Read(p)
		}
		if c.buf == nil {
			c.buf = make([]byte, 4096)
		}
		c.mu.Unlock()
		n, err := c.Conn.Read(c.buf)
		c.mu.Lock()
		c.pending = append(c.pending, c.buf[:n]...)
		c.readErr = err
	}
}

// scan moves pending bytes to ready up to the end of a line that needs an
// answer before more may be read.
func (c *wireConn) scan() {
	i := 0
	for i < len(c.pending) && !c.holding && c.reject == nil && !c.passive {
		n, end := c.in.feed(c.pending[i:])
		i += n
		if end != nil {
			c.lineEnded(end)
		}
	}
	if c.passive {
		i = len(c.pending)
	}
	c.ready = append(c.ready, c.pending[:i]...)
	c.pending = c.pending[i:]
	if c.reject != nil {
		c.pending = nil
	}
	if len(c.pending) == 0 {
		c.pending = nil
	}
}

// lineEnded decides what follows a client line.
func (c *wireConn) lineEnded(end *lineEnd) {
	if !end.cont {
		c.inIdle = c.name == "IDLE"
		c.tag, c.name = commandWords(end.head)
	}
	switch {
	case end.brokenQuote:
		c.rejectWith(errWireBrokenQuote)
	case end.literal > bufferedLiteralLimit && c.name != "APPEND":
		c.rejectWith(errWireLiteralTooBig)
	case end.literal > c.appendLimit && end.nonSync && c.name == "APPEND":
		c.rejectWith(errWireAppendTooBig)
	case end.literal >= 0 && !end.nonSync:
		c.holding, c.heldTag, c.heldSize = true, c.tag, end.literal
		c.in.literal = 0
	case c.name == "STARTTLS":
		c.passive = true
	}
}

func (c *wireConn) rejectWith(err *goimap.Error) {
	c.reject, c.rejectTag = err, c.tag
	c.in.literal = 0
}

// sayBye ends a rejected connection with BYE once go-imap has answered the
// rejected command. go-imap is reading, so it writes nothing meanwhile;
// except after IDLE, whose updates go-imap may still be writing from
// another goroutine when the line that should end it fails: there the
// connection just closes.
func (c *wireConn) sayBye() {
	if !c.answered || c.byeSeen || c.inIdle {
		return
	}
	c.byeSeen = true
	c.Conn.Write([]byte("* BYE " + c.reject.Text + "\r\n"))
}

// Write passes go-imap's output on, watching its framing for the answer
// to a held literal and the reply to a rejected command.
func (c *wireConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.passive {
		for rest := p; len(rest) > 0; {
			n, end := c.out.feed(rest)
			rest = rest[n:]
			if end != nil {
				c.serverLine(end.head)
			}
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// endHold ends the wait for go-imap's answer to a synchronizing literal:
// the data follows, or the command is over and a new one begins.
func (c *wireConn) endHold(data bool) {
	c.holding = false
	if data {
		c.in.literal = c.heldSize
	} else {
		c.in.literal, c.in.cont = 0, false
	}
}

// serverLine notes a line go-imap wrote.
func (c *wireConn) serverLine(head []byte) {
	if c.holding {
		switch {
		case bytes.HasPrefix(head, []byte("+")):
			c.endHold(true)
		case hasTag(head, c.heldTag):
			c.endHold(false)
		}
	}
	if c.reject != nil && hasTag(head, c.rejectTag) {
		c.answered = true
	}
	if bytes.HasPrefix(head, []byte("* BYE ")) {
		c.byeSeen = true
	}
}

func hasTag(line []byte, tag string) bool {
	return len(line) > len(tag) && line[len(tag)] == ' ' && string(line[:len(tag)]) == tag
}

// wireListener hands out wireConns.
type wireListener struct {
	net.Listener
	appendLimit int64
}

func (l wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newWireConn(c, l.appendLimit), nil
}
