package resolver

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// lookup returns the records of type qtype at name, following CNAMEs, from
// the cache when it has a fresh answer.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	name = dns.CanonicalName(name)
	if _, ok := dns.IsDomainName(name); !ok || name == "." {
		return nil, &net.DNSError{Err: "invalid domain name", Name: name, IsNotFound: true}
	}
	for range maxCNAMEs {
		key := cacheKey{name: name, qtype: qtype}
		e, ok := r.cache.get(key, r.now())
		if !ok {
			resp, err := r.query(ctx, name, qtype)
			if err != nil {
				return nil, err
			}
			a := interpret(resp, name, qtype)
			now := r.now()
			e = entry{rrs: a.rrs, err: a.err, next: a.next, expires: now.Add(a.ttl)}
			r.cache.put(key, e, now)
		}
		if e.next == "" {
			return e.rrs, e.err
		}
		name = e.next
	}
	return nil, &net.DNSError{Err: "too many CNAMEs", Name: name, IsNotFound: true}
}

// answer is what one DNS response says about (name, qtype).
type answer struct {
	rrs  []dns.RR
	err  error         // nil, or a not-found *net.DNSError
	ttl  time.Duration // how long it may be cached
	next string        // a CNAME target still to be asked
}

// interpret reads a NOERROR or NXDOMAIN response: the records of qtype at
// name or at the end of the CNAME chain in the answer section.
func interpret(resp *dns.Msg, name string, qtype uint16) answer {
	if resp.Rcode == dns.RcodeNameError {
		return answer{err: notFound(name, ""), ttl: negativeCacheTTL(resp)}
	}
	target, ttl := name, maxTTL
	for range maxCNAMEs {
		cname := ""
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CNAME); ok && dns.CanonicalName(c.Hdr.Name) == target {
				cname, ttl = dns.CanonicalName(c.Target), min(ttl, rrTTL(rr))
			}
		}
		if cname == "" || qtype == dns.TypeCNAME {
			break
		}
		target = cname
	}
	var rrs []dns.RR
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == qtype && dns.CanonicalName(rr.Header().Name) == target {
			rrs = append(rrs, rr)
			ttl = min(ttl, rrTTL(rr))
		}
	}
	switch {
	case len(rrs) > 0:
		return answer{rrs: rrs, ttl: ttl}
	case target != name:
		return answer{next: target, ttl: ttl}
	}
	return answer{err: notFound(name, ""), ttl: negativeCacheTTL(resp)}
}

func rrTTL(rr dns.RR) time.Duration {
	return min(time.Duration(rr.Header().Ttl)*time.Second, maxTTL)
}

// negativeCacheTTL is how long "no such record" may be cached (RFC 2308
// section 5: the SOA's TTL, at most its minimum field).
func negativeCacheTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, maxTTL)
		}
	}
	return negativeTTL
}

func notFound(name, server string) *net.DNSError {
	return &net.DNSError{Err: "no such host or record", Name: name, Server: server, IsNotFound: true}
}

// query asks the servers in turn until one gives a NOERROR or NXDOMAIN
// response, within the lookup's time bound. A server that answers with
// another code (SERVFAIL, REFUSED) ends the lookup as a temporary failure
// once every server has been asked; a silent one is asked again.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(dns.DefaultMsgSize, false)
	var lastErr *net.DNSError
	for attempt := 0; ; attempt++ {
		refused := 0
		for _, server := range r.servers {
			resp, err := r.exchange(ctx, m, server)
			switch {
			case err != nil:
				lastErr = &net.DNSError{Err: err.Error(), Name: name, Server: server, IsTimeout: isTimeout(err), IsTemporary: true}
			case resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError:
				return resp, nil
			default:
				refused++
				lastErr = &net.DNSError{Err: "server answered " + dns.RcodeToString[resp.Rcode], Name: name, Server: server, IsTemporary: true}
			}
			if ctx.Err() != nil {
				break
			}
		}
		if refused == len(r.servers) {
			return nil, lastErr
		}
		pause := time.NewTimer(min(50*time.Millisecond<<attempt, time.Second))
		select {
		case <-ctx.Done():
			pause.Stop()
			if !lastErr.IsTimeout {
				lastErr = &net.DNSError{Err: "no answer in time: " + lastErr.Err, Name: name, Server: lastErr.Server, IsTimeout: true, IsTemporary: true}
			}
			return nil, lastErr
		case <-pause.C:
		}
	}
}

// exchange sends one query over UDP, and again over TCP when the answer
// was truncated.
func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	resp, _, err := r.udp.ExchangeContext(ctx, m, server)
	if err == nil && resp.Truncated {
		resp, _, err = r.tcp.ExchangeContext(ctx, m, server)
	}
	return resp, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sortMX orders MX records by preference, equal ones in random order
// (RFC 5321 section 5.1).
func sortMX(mxs []*net.MX) {
	rand.Shuffle(len(mxs), func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] })
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
}
