package postgres

import "postkasse.dev/postkasse/store"

// keywordList is fs's keywords for a text[] column: never nil, which pgx
// would store as NULL. The flag rules themselves are store.FlagSet's.
func keywordList(fs store.FlagSet) []string {
	if fs.Keywords == nil {
		return []string{}
	}
	return fs.Keywords
}
