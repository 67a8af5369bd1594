package config

// The shapes toml decodes into. Pointers tell "absent" from "empty";
// sizes, times and durations arrive as `any` so that a string or a number
// is accepted and a bad value gets our message, not the decoder's.

type rawConfig struct {
	Hostname   string                `toml:"hostname"`
	DataDir    *string               `toml:"data_dir"`
	Domains    []string              `toml:"domains"`
	Postmaster string                `toml:"postmaster"`
	Listen     rawListen             `toml:"listen"`
	TLS        rawTLS                `toml:"tls"`
	Limits     rawLimits             `toml:"limits"`
	Outbound   rawOutbound           `toml:"outbound"`
	DNS        rawDNS                `toml:"dns"`
	Inbound    rawInbound            `toml:"inbound"`
	User       map[string]rawMailbox `toml:"user"`
	Shared     map[string]rawMailbox `toml:"shared"`
	Group      map[string]rawGroup   `toml:"group"`
	DKIM       map[string]rawDKIM    `toml:"dkim"`
	Store      rawStore              `toml:"store"`
}

type rawListen struct {
	SMTP        *string `toml:"smtp"`
	Submission  *string `toml:"submission"`
	Submissions *string `toml:"submissions"`
	IMAP        *string `toml:"imap"`
	IMAPS       *string `toml:"imaps"`
	HTTP        *string `toml:"http"`
	HTTPS       *string `toml:"https"`
	Metrics     *string `toml:"metrics"`
	// ProxyProtocol is listen.proxy_protocol (SPEC §13).
	ProxyProtocol []string `toml:"proxy_protocol"`
}

type rawTLS struct {
	Cert              string   `toml:"cert"`
	Key               string   `toml:"key"`
	AllowInsecureAuth *bool    `toml:"allow_insecure_auth"`
	ACME              *rawACME `toml:"acme"`
}

type rawACME struct {
	Directory string   `toml:"directory"`
	Email     string   `toml:"email"`
	Hosts     []string `toml:"hosts"`
}

type rawDNS struct {
	Resolver string `toml:"resolver"`
}

type rawInbound struct {
	SPF             *bool     `toml:"spf"`
	DKIM            *bool     `toml:"dkim"`
	DMARC           *bool     `toml:"dmarc"`
	TrustedNetworks *[]string `toml:"trusted_networks"`
}

type rawLimits struct {
	MessageSize          any    `toml:"message_size"`
	UserQuota            any    `toml:"user_quota"`
	SharedQuota          any    `toml:"shared_quota"`
	RecipientsPerMessage *int64 `toml:"recipients_per_message"`

	ConnectionsPerIP  *int64 `toml:"connections_per_ip"`
	AuthFailures      *int64 `toml:"auth_failures"`
	AuthFailuresPerIP *int64 `toml:"auth_failures_per_ip"`
}

type rawOutbound struct {
	Smarthost         string `toml:"smarthost"`
	SmarthostUsername string `toml:"smarthost_username"`
	SmarthostPassword string `toml:"smarthost_password"`
	SmarthostTLS      string `toml:"smarthost_tls"`
	Resolver          string `toml:"resolver"`
	QueueLifetime     any    `toml:"queue_lifetime"`
	RetryAfter        any    `toml:"retry_after"`
}

type rawMailbox struct {
	Address   string              `toml:"address"`
	Name      string              `toml:"name"`
	Password  string              `toml:"password"`
	Aliases   []string            `toml:"aliases"`
	Apps      *[]string           `toml:"apps"`
	Quota     any                 `toml:"quota"`
	Contacts  []string            `toml:"contacts"`
	Forward   *rawForward         `toml:"forward"`
	AutoReply *rawAutoReply       `toml:"auto_reply"`
	Connected []rawConnected      `toml:"connected"`
	Members   []string            `toml:"members"`
	Grants    map[string][]string `toml:"grants"`
	Seen      string              `toml:"seen"`
	SentCopy  *bool               `toml:"sent_copy"`
}

type rawForward struct {
	To       []string `toml:"to"`
	KeepCopy bool     `toml:"keep_copy"`
}

type rawAutoReply struct {
	Enabled          bool   `toml:"enabled"`
	Start            any    `toml:"start"`
	End              any    `toml:"end"`
	Subject          string `toml:"subject"`
	Internal         string `toml:"internal"`
	External         string `toml:"external"`
	ExternalAudience string `toml:"external_audience"`
}

type rawConnected struct {
	Host         string `toml:"host"`
	Security     string `toml:"security"`
	Username     string `toml:"username"`
	Password     string `toml:"password"`
	Folder       string `toml:"folder"`
	Into         string `toml:"into"`
	Interval     any    `toml:"interval"`
	DeleteRemote bool   `toml:"delete_remote"`
}

type rawGroup struct {
	Address              string   `toml:"address"`
	Name                 string   `toml:"name"`
	Members              []string `toml:"members"`
	AllowExternalSenders bool     `toml:"allow_external_senders"`
	SendAutoReplies      bool     `toml:"send_auto_replies"`
}

type rawDKIM struct {
	Selector string `toml:"selector"`
	Key      string `toml:"key"`
}
