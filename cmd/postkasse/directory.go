package main

import (
	"postkasse.dev/postkasse/config"
	"postkasse.dev/postkasse/policy"
)

// directoryOptions hands the routing policy its part of the configuration.
func directoryOptions(cfg *config.Config) policy.DirectoryOptions {
	opts := policy.DirectoryOptions{Domains: cfg.Domains, Postmaster: cfg.Postmaster}
	for _, m := range cfg.Users {
		opts.Mailboxes = append(opts.Mailboxes, mailboxOptions(m))
	}
	for _, m := range cfg.Shared {
		opts.Mailboxes = append(opts.Mailboxes, mailboxOptions(m))
	}
	for _, g := range cfg.Groups {
		opts.Groups = append(opts.Groups, policy.Group{
			ID: g.Key, Address: g.Address, Name: g.Name, Members: g.Members,
			AllowExternalSenders: g.AllowExternalSenders, SendAutoReplies: g.SendAutoReplies,
		})
	}
	return opts
}

func mailboxOptions(m *config.Mailbox) policy.Mailbox {
	mb := policy.Mailbox{
		ID: m.Key, Kind: policy.KindUser, Address: m.Address, Name: m.Name, Aliases: m.Aliases,
		PasswordHash: m.Password, IMAP: m.IMAP, SMTP: m.SMTP, DAV: m.DAV, Quota: m.Quota, Contacts: m.Contacts,
	}
	if m.Shared {
		mb.Kind = policy.KindShared
		mb.IMAP, mb.SMTP, mb.DAV = false, false, false
		mb.Members = m.Members
		mb.SeenPerUser = m.Seen == "per-user"
		mb.SentCopy = m.SentCopy
		mb.Grants = make(map[string]policy.Rights, len(m.Grants))
		for addr, rights := range m.Grants {
			mb.Grants[addr] = parseRights(rights)
		}
	}
	if f := m.Forward; f != nil {
		mb.Forward = &policy.Forward{To: f.To, KeepCopy: f.KeepCopy}
	}
	if a := m.AutoReply; a != nil {
		mb.AutoReply = &policy.AutoReply{
			Enabled: a.Enabled, Start: a.Start, End: a.End, Subject: a.Subject,
			Internal: a.Internal, External: a.External, ExternalAudience: audience(a.ExternalAudience),
		}
	}
	return mb
}

func parseRights(names []string) policy.Rights {
	var r policy.Rights
	for _, n := range names {
		switch n {
		case "read":
			r |= policy.RightRead
		case "full":
			r |= policy.RightFull
		case "send_as":
			r |= policy.RightSendAs
		case "send_on_behalf":
			r |= policy.RightSendOnBehalf
		}
	}
	return r
}

func audience(s string) policy.Audience {
	switch s {
	case "contacts":
		return policy.AudienceContacts
	case "all":
		return policy.AudienceAll
	}
	return policy.AudienceNone
}
