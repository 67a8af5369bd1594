package main

import (
	"slices"

	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/connected"
	"postkasse.dev/postkasse/imap"
)

// connectedAccounts hands the connected-account runner its part of the
// configuration: the accounts of every user and shared mailbox. A local
// folder created for them gets its special use (Archive: \Archive).
func connectedAccounts(cfg *config.Config) []connected.Account {
	special := make(map[string]string)
	for _, f := range imap.DefaultFolders() {
		special[f.Name] = f.SpecialUse
	}
	var out []connected.Account
	for _, mb := range slices.Concat(cfg.Users, cfg.Shared) {
		for _, c := range mb.Connected {
			out = append(out, connected.Account{
				Mailbox: mb.Key, Host: c.Host, Security: c.Security, Username: c.Username, Password: c.Password,
				Folder: c.Folder, Into: c.Into, IntoSpecialUse: special[c.Into], Interval: c.Interval,
				DeleteRemote: c.DeleteRemote,
			})
		}
	}
	return out
}
