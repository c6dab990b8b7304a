package configs

import "time"

// Provider types accepted in Provider.Type.
const (
	ProviderOpenAI    = "openai"    // OpenAI, or any OpenAI-compatible server
	ProviderAzure     = "azure"     // Azure OpenAI
	ProviderAnthropic = "anthropic" // Anthropic Messages API (no embeddings)
	ProviderGemini    = "gemini"    // Google Gemini
	ProviderMock      = "mock"      // in-process fake upstream, for demos and tests
)

// Model types accepted in Model.Type.
const (
	ModelChat      = "chat"      // chat completions (the default)
	ModelEmbedding = "embedding" // embeddings
)

// AllModels is the Org.Models and Key.Models entry that stands for every
// model.
const AllModels = "*"

// Defaults the loader applies to fields left zero.
const (
	DefaultMaxBodyBytes ByteSize = 8 << 20 // Server.MaxBodyBytes
	DefaultMaxConns              = 512     // Provider.MaxConns

	DefaultConnectTimeout   = Duration(5 * time.Second)   // Timeouts.Connect
	DefaultFirstByteTimeout = Duration(120 * time.Second) // Timeouts.FirstByte
	DefaultIdleTimeout      = Duration(60 * time.Second)  // Timeouts.Idle
	DefaultTotalTimeout     = Duration(10 * time.Minute)  // Timeouts.Total

	DefaultMockChunks     = 8                                  // Mock.Chunks
	DefaultMockReply      = "This is a mock answer from aigw." // Mock.Reply
	DefaultMockDimensions = 1536                               // Mock.Dimensions

	MaxMockChunks     = 10000 // upper bound of Mock.Chunks
	MaxMockDimensions = 65536 // upper bound of Mock.Dimensions
)

// Policy is the merged content of all policy files: a single file, or every
// *.yaml/*.yml file of a directory in lexical order, with lists
// concatenated. A Policy returned by [Load] is complete: defaults are
// applied, references are checked and secrets are resolved. It is not
// modified afterwards by this package and may be shared read-only between
// goroutines.
type Policy struct {
	Server    Server     `yaml:"server"`
	Providers []Provider `yaml:"providers"`
	Models    []Model    `yaml:"models"`
	Orgs      []Org      `yaml:"orgs"`
	Keys      []Key      `yaml:"keys"`
	// Tiers are named limit templates orgs refer to.
	Tiers []Tier `yaml:"tiers"`
	// Prices add to or override the shipped price table.
	Prices []Price `yaml:"prices"`

	// Sources lists the files loaded, in load order, named as reports name
	// them (joined to the path given to Load).
	Sources []string `yaml:"-"`
	// Checksum is the hex sha256 over the files' base names and bytes, as
	// read by Load. It equals what a [Watcher] computes for unchanged
	// files, so it can seed Watcher.Last.
	Checksum string `yaml:"-"`
}

// Server holds process-wide settings of the HTTP edge. Only one policy file
// may set it; fields left zero get defaults.
type Server struct {
	// MaxBodyBytes caps a request body. Default 8 MiB. YAML accepts an
	// integer (bytes) or a size such as "512KiB", "8MiB", "1MB", "1GiB".
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MetadataHeaders are request headers recorded as request metadata
	// (an allow-list; may be empty). Each must be a valid header name,
	// must not carry credentials (Authorization, Cookie, API keys), and
	// must name a record field (see MetadataField).
	MetadataHeaders []string `yaml:"metadata_headers"`
	// Breaker tunes every target's circuit breaker; zero fields get the
	// router's defaults (see Breaker).
	Breaker Breaker `yaml:"breaker"`
	// Cache sizes the response cache orgs opt into.
	Cache ServerCache `yaml:"cache"`
}

// Provider is one upstream API account.
type Provider struct {
	ID   string `yaml:"id"`
	Type string `yaml:"type"` // one of the Provider* constants
	// BaseURL is the absolute http(s) URL requests are sent under, without
	// trailing "/", query or fragment. Required except for type mock.
	BaseURL    string   `yaml:"base_url"`
	APIKey     Secret   `yaml:"api_key"`     // optional
	APIVersion string   `yaml:"api_version"` // optional (azure, anthropic)
	MaxConns   int      `yaml:"max_conns"`   // connection pool size; default 512
	Timeouts   Timeouts `yaml:"timeouts"`
	Mock       *Mock    `yaml:"mock"` // only with type mock; never nil for type mock after Load
	// HealthCheck configures the active health probe (listing models).
	HealthCheck HealthCheck `yaml:"health_check"`
	Pos         Pos         `yaml:"-"` // where it was declared
}

// Timeouts bound one upstream request. Zero fields get defaults.
type Timeouts struct {
	Connect Duration `yaml:"connect"` // dialling, TLS included; default 5s
	// FirstByte is the time from request sent to response headers / first
	// byte; default 120s.
	FirstByte Duration `yaml:"first_byte"`
	Idle      Duration `yaml:"idle"`  // max silence between stream reads; default 60s
	Total     Duration `yaml:"total"` // the whole request; default 10m
}

// Mock configures a provider of type mock, which answers in process.
type Mock struct {
	Latency       Duration `yaml:"latency"`        // delay before the answer's headers; default 0
	Chunks        int      `yaml:"chunks"`         // content chunks per streamed answer; default 8, 1..10000
	ChunkInterval Duration `yaml:"chunk_interval"` // delay between chunks; default 0
	Reply         string   `yaml:"reply"`          // text to answer with; default DefaultMockReply
	Dimensions    int      `yaml:"dimensions"`     // embedding size; default 1536, 1..65536
}

// Model is an alias clients send as "model", served by ordered targets.
type Model struct {
	ID      string      `yaml:"id"`      // the alias clients send as "model"
	Type    string      `yaml:"type"`    // ModelChat (the default) or ModelEmbedding
	Targets []TargetRef `yaml:"targets"` // at least one
	// Strategy orders the targets for each request: one of the Strategy*
	// constants; "" means StrategyPriority.
	Strategy string `yaml:"strategy"`
	// Retry bounds failover before the commit point; zero fields get
	// defaults (see Retry).
	Retry Retry `yaml:"retry"`
	Pos   Pos   `yaml:"-"`
}

// TargetRef names one upstream serving a Model.
type TargetRef struct {
	Provider string `yaml:"provider"` // a declared Provider.ID
	Model    string `yaml:"model"`    // upstream model name; defaults to the alias id
	// MaxTokens is the default output cap for providers that require one
	// (0 = the adapter's default).
	MaxTokens int `yaml:"max_tokens"`
	// Weight is the target's share under the weighted strategy (0 makes it
	// a fallback only).
	Weight int `yaml:"weight"`
	// Cost is the target's relative cost for the cost strategy, in USD per
	// million tokens; 0 means "take it from the price table".
	Cost float64 `yaml:"cost"`
	// Capabilities the target supports: any of "tools", "images", "json".
	// Empty means all of them.
	Capabilities []string `yaml:"capabilities"`
	// ContextWindow is the model's context in tokens (0 = unknown).
	ContextWindow int `yaml:"context_window"`
	Pos           Pos `yaml:"-"`
}

// Org is a tenant: keys belong to an org, and the org bounds the models its
// keys may use.
type Org struct {
	ID string `yaml:"id"`
	// Models lists the model ids the org may use; AllModels ("*") allows
	// every model. Each other entry names a declared model.
	Models []string `yaml:"models"`
	// Routing overrides how the org's requests are routed.
	Routing OrgRouting `yaml:"routing"`

	// Quotas: the tier's limits with Limits as overrides, in Timezone
	// (IANA name; default UTC) for daily quotas and schedules.
	Tier         string       `yaml:"tier"`
	Limits       Limits       `yaml:"limits"`
	Timezone     string       `yaml:"timezone"`
	Schedules    []Schedule   `yaml:"schedules"`
	PriorityMode PriorityMode `yaml:"priority_mode"`
	Queue        Queue        `yaml:"queue"`
	FailMode     string       `yaml:"fail_mode"` // FailLocal (default), FailOpen or FailClosed
	Output       Output       `yaml:"output"`

	// Budget caps the org's spend; Currency is what its costs are also
	// recorded in.
	Budget   Budget   `yaml:"budget"`
	Currency Currency `yaml:"currency"`

	// Cache and Compression save money on the org's requests; both are
	// off unless set.
	Cache       Cache       `yaml:"cache"`
	Compression Compression `yaml:"compression"`

	Pos Pos `yaml:"-"`
}

// Key is a gateway API key. Keys are never stored in clear: SHA256 is the
// lowercase hex sha256 of the full key text.
type Key struct {
	ID     string `yaml:"id"`
	Org    string `yaml:"org"`    // a declared Org.ID
	SHA256 string `yaml:"sha256"` // 64 lowercase hex characters, unique across keys
	// Models optionally restricts the key further; each entry must be
	// allowed to its org. Empty or containing AllModels means the org's.
	Models   []string `yaml:"models"`
	Disabled bool     `yaml:"disabled"`
	// Limits apply to this key on top of its org's.
	Limits Limits `yaml:"limits"`
	// Scopes grant extra powers: ScopeEmergency.
	Scopes []string `yaml:"scopes"`
	Pos    Pos      `yaml:"-"`
}
