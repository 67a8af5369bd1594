package imap

import "testing"

// FuzzAnalyze feeds arbitrary messages through the delivery-time parser:
// it must never panic, and what it writes must always read back.
func FuzzAnalyze(f *testing.F) {
	f.Add([]byte(multipartMessage))
	f.Add([]byte("Subject: x\r\n\r\nbody"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n--a\r\n\r\n--a--"))
	f.Add([]byte("garbage without header"))
	f.Fuzz(func(t *testing.T, body []byte) {
		cache := Analyze(body)
		if _, _, err := decodeCache(cache); err != nil {
			t.Fatalf("cache of %q does not decode: %v", body, err)
		}
	})
}

// FuzzDecodeCache makes sure a damaged cache record is an error, not a
// crash.
func FuzzDecodeCache(f *testing.F) {
	f.Add(Analyze([]byte(multipartMessage)))
	f.Add([]byte{cacheVersion, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeCache(data)
	})
}
