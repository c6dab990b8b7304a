package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/aigw/aigw/accounting/ledger"
	"github.com/aigw/aigw/accounting/prices"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy/budget"
	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/proxy"
)

// Bootstrap settings: read once at start from flags, AIGW_* environment
// variables (AIGW_LISTEN, AIGW_ADMIN_LISTEN, AIGW_POLICY, ...) and an
// optional YAML file (--bootstrap), in that order of precedence.
type bootstrap struct {
	Listen         string
	AdminListen    string
	Policy         string
	LogLevel       string
	ShutdownGrace  time.Duration
	ReloadInterval time.Duration
	DebugListen    string
	// LedgerDSN is where usage records go: "sqlite:PATH" or a postgres://
	// URL (ledger.dsn); "none" keeps none. LedgerSpill is the local spill
	// directory (default: next to a SQLite file, else ./data/spill).
	LedgerDSN   string
	LedgerSpill string
	// LedgerSync is when the spill is fsynced: "always" (before a request's
	// answer ends: its record survives a power cut) or an interval such as
	// "50ms" (the answer waits for the write only: its record survives a
	// crash of the process, and a power cut loses at most the last
	// interval's records that the store had not committed yet).
	LedgerSync string
	// LedgerFlush is how often spilled records are written to the store.
	LedgerFlush time.Duration
	// RedisURL, when set, keeps rate limits and quotas in Redis, shared
	// by every replica (redis://[:password@]host:port/db, rediss:// for
	// TLS). Empty: in process.
	RedisURL string
	// RedisTimeout bounds one Redis call; a hung Redis adds at most this
	// to a request until the breaker opens.
	RedisTimeout time.Duration
	// Replicas is how many gateways share Redis: while it is down, each
	// enforces 1/Replicas of every limit (orgs with fail_mode local).
	Replicas int
}

func serveCmd(ctx context.Context, lookupEnv configs.Env) *cobra.Command {
	v := viper.New()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f := v.GetString("bootstrap"); f != "" {
				v.SetConfigFile(f)
				if err := v.ReadInConfig(); err != nil {
					return fmt.Errorf("bootstrap file: %w", err)
				}
			}
			b := bootstrap{
				Listen:         v.GetString("listen"),
				AdminListen:    v.GetString("admin-listen"),
				Policy:         v.GetString("policy"),
				LogLevel:       v.GetString("log-level"),
				ShutdownGrace:  v.GetDuration("shutdown-grace"),
				ReloadInterval: v.GetDuration("reload-interval"),
				DebugListen:    v.GetString("debug-listen"),
				RedisURL:       v.GetString("redis-url"),
				LedgerDSN:      v.GetString("ledger-dsn"),
				LedgerSpill:    v.GetString("ledger-spill"),
				LedgerSync:     v.GetString("ledger-sync"),
				LedgerFlush:    v.GetDuration("ledger-flush-interval"),
				RedisTimeout:   v.GetDuration("redis-timeout"),
				Replicas:       v.GetInt("replicas"),
			}
			return serve(ctx, b, lookupEnv, cmd)
		},
	}
	f := cmd.Flags()
	f.String("listen", "127.0.0.1:8080", "public listener address (env AIGW_LISTEN)")
	f.String("admin-listen", "127.0.0.1:9090", "admin listener address: metrics, health, reload (env AIGW_ADMIN_LISTEN)")
	f.StringP("policy", "c", "configs/examples/quickstart.yaml", "policy file or directory (env AIGW_POLICY)")
	f.String("log-level", "info", "log level: debug, info, warn, error (env AIGW_LOG_LEVEL)")
	f.Duration("shutdown-grace", 30*time.Second, "how long SIGTERM waits for in-flight requests and streams (env AIGW_SHUTDOWN_GRACE)")
	f.Duration("reload-interval", 5*time.Second, "how often policy files are checked for changes; 0 disables (env AIGW_RELOAD_INTERVAL)")
	f.String("debug-listen", "", "optional address for Go's pprof profiles, e.g. 127.0.0.1:6060; off when empty (env AIGW_DEBUG_LISTEN)")
	f.String("ledger-dsn", ledger.DefaultDSN, "usage ledger: sqlite:PATH or postgres://...; none to keep no records (env AIGW_LEDGER_DSN)")
	f.String("ledger-spill", "", "the ledger's local spill directory, one per replica (default: beside the SQLite file, or ./data/spill) (env AIGW_LEDGER_SPILL)")
	f.String("ledger-sync", defaultLedgerSync, "when the ledger's spill is fsynced: always (before each answer ends; survives a power cut) or an interval like 50ms (answers wait for the write only; survives a process crash) (env AIGW_LEDGER_SYNC)")
	f.Duration("ledger-flush-interval", 200*time.Millisecond, "how often spilled usage records are written to the store, in one transaction (env AIGW_LEDGER_FLUSH_INTERVAL)")
	f.String("redis-url", "", "Redis for rate limits, quotas and budgets shared by replicas, e.g. redis://127.0.0.1:6379/0; in process when empty (env AIGW_REDIS_URL)")
	f.Duration("redis-timeout", quota.DefaultRedisTimeout, "bound on one Redis call (env AIGW_REDIS_TIMEOUT)")
	f.Int("replicas", 1, "gateway replicas sharing Redis: each enforces 1/replicas of a limit while Redis is down (env AIGW_REPLICAS)")
	f.String("bootstrap", "", "optional YAML file with these settings (env AIGW_BOOTSTRAP)")
	_ = v.BindPFlags(f)
	v.SetEnvPrefix("AIGW")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	return cmd
}

func serve(ctx context.Context, b bootstrap, lookupEnv configs.Env, cmd *cobra.Command) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(b.LogLevel)); err != nil {
		return fmt.Errorf("log level %q: %w", b.LogLevel, err)
	}
	logCtx, stopLog := context.WithCancel(context.Background())
	logOut := newBufferedLog(logCtx, cmd.OutOrStdout(), 100*time.Millisecond)
	defer func() {
		stopLog()
		_ = logOut.Flush()
	}()
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level}))
	if procs, raised := ensureProcs(lookupEnv); raised {
		log.Info("GOMAXPROCS raised so ledger syscalls do not stall requests", "gomaxprocs", procs)
	}
	if ensureGCPercent(lookupEnv) {
		log.Info("GOGC set for fewer collection pauses on a shared core; set GOGC to choose", "gogc", defaultGCPercent)
	}

	load := func() (*configs.Policy, error) {
		pol, rep, err := configs.Load(b.Policy, lookupEnv)
		if rep != nil {
			for _, w := range rep.Warnings {
				log.Warn("policy warning", "at", w.Pos.String(), "msg", w.Msg)
			}
		}
		return pol, err
	}
	opts := proxy.Options{Version: version, Logger: log, Registry: prometheus.NewRegistry()}
	table, err := shippedPrices()
	if err != nil {
		return err
	}
	opts.Prices = table
	if b.LedgerDSN != "none" {
		led, err := openLedger(ctx, b, log)
		if err != nil {
			return err
		}
		// Closed after the server has shut down (deferred before it):
		// what the store has not taken stays in the spill for next time.
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := led.Close(cctx); err != nil {
				log.Warn("ledger close", "error", err)
			}
		}()
		opts.Ledger = led
		opts.Registry.MustRegister(newLedgerCollector(led))
		opts.BudgetSeed = led // a restart resumes each budget period's spend from the ledger
	}
	if b.RedisURL != "" {
		ro, err := redis.ParseURL(b.RedisURL)
		if err != nil {
			return fmt.Errorf("redis url: %w", err)
		}
		client := redis.NewClient(quota.ClientOptions(ro))
		defer client.Close()
		opts.QuotaBackend = func(m quota.Metrics) quota.Backend {
			return quota.NewRedis(client, quota.RedisConfig{Timeout: b.RedisTimeout, Replicas: b.Replicas,
				Logger: log, Metrics: m})
		}
		opts.BudgetBackend = func(m budget.Metrics) budget.Backend {
			return budget.NewRedis(client, budget.RedisConfig{Timeout: b.RedisTimeout, Logger: log, Metrics: m})
		}
		opts.CacheRedis = client
		log.Info("quotas, budgets and the response cache in redis", "addr", ro.Addr, "db", ro.DB, "replicas", b.Replicas)
	}
	srv, err := proxy.New(load, opts)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitError{1}
	}
	pub, err := net.Listen("tcp", b.Listen)
	if err != nil {
		return fmt.Errorf("public listener: %w", err)
	}
	adm, err := net.Listen("tcp", b.AdminListen)
	if err != nil {
		pub.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	log.Info("aigw listening", "public", pub.Addr().String(), "admin", adm.Addr().String(),
		"policy", b.Policy, "version", version)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if b.DebugListen != "" {
		stopDebug, err := serveDebug(b.DebugListen)
		if err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
		defer stopDebug()
		log.Info("pprof listening", "addr", b.DebugListen)
	}
	if b.ReloadInterval > 0 {
		go configs.Watch(runCtx, b.Policy, b.ReloadInterval, func() { _ = srv.Reload() })
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				_ = srv.Reload()
			case <-runCtx.Done():
				return
			}
		}
	}()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(pub, adm) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", b.ShutdownGrace.String())
	sctx, scancel := context.WithTimeout(context.Background(), b.ShutdownGrace)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Error("shutdown", "error", err)
	}
	<-errc
	log.Info("stopped")
	return nil
}

// openLedger opens the usage ledger b names, creating a SQLite file's
// directory and the spill directory as needed.
func openLedger(ctx context.Context, b bootstrap, log *slog.Logger) (*ledger.Ledger, error) {
	dsn := b.LedgerDSN
	spill := b.LedgerSpill
	syncEvery, err := parseLedgerSync(b.LedgerSync)
	if err != nil {
		return nil, err
	}
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		dir := filepath.Dir(path)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		if spill == "" {
			spill = filepath.Join(dir, "spill")
		}
	}
	if spill == "" {
		spill = filepath.Join("data", "spill")
	}
	led, err := ledger.Open(ctx, ledger.Config{DSN: dsn, Options: ledger.Options{SpillDir: spill, SyncInterval: syncEvery, FlushInterval: b.LedgerFlush, Logger: log}})
	if err != nil {
		return nil, err // names the store, its DSN redacted
	}
	log.Info("usage ledger", "store", ledger.RedactDSN(dsn), "spill", spill, "sync", b.LedgerSync)
	return led, nil
}

// shippedPrices loads the price table compiled into the binary.
func shippedPrices() (*prices.Table, error) {
	t, err := prices.Load(bytes.NewReader(configs.DefaultPrices()), "configs/prices.yaml")
	if err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	return t, nil
}

// defaultLedgerSync is --ledger-sync's default.
const defaultLedgerSync = "50ms"

// parseLedgerSync turns --ledger-sync into ledger.Options.SyncInterval:
// "always" is zero (fsync before every Append returns), a positive
// duration up to a minute is the background fsync interval.
func parseLedgerSync(s string) (time.Duration, error) {
	if s == "always" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Millisecond || d > time.Minute {
		return 0, fmt.Errorf("ledger sync %q: want always or an interval between 1ms and 1m, like 50ms", s)
	}
	return d, nil
}
