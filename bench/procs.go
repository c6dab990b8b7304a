package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs starts the child processes of a run, pinned to a core with taskset
// when it can, and makes sure every one of them is gone when the run ends.
type procs struct {
	taskset string // path of taskset, "" to run unpinned
	self    string // this program, re-executed with -role
	nice    int    // nice value of every child, 0: unchanged

	mu       sync.Mutex
	children []*child
}

type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser // closed to tell a role child to exit
	addr  string         // listening address, for servers
	done  chan struct{}  // closed when the process has exited
	err   error          // Wait's result, valid after done
}

// command builds a command pinned to cpu (if pinning works).
func (p *procs) command(ctx context.Context, cpu int, name string, args ...string) *exec.Cmd {
	argv := append([]string{name}, args...)
	if p.taskset != "" {
		argv = append([]string{p.taskset, "-c", strconv.Itoa(cpu)}, argv...)
	}
	if p.nice != 0 {
		argv = append([]string{"nice", "-n", strconv.Itoa(p.nice)}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	setPdeathsig(cmd)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// track registers a started command so that stopAll can end it.
func (p *procs) track(name string, cmd *exec.Cmd, stdin io.WriteCloser) *child {
	c := &child{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	p.mu.Lock()
	p.children = append(p.children, c)
	p.mu.Unlock()
	return c
}

// startRole starts this program in a server role (upstream, floor) on cpu
// and waits for the "listening ADDR" line it prints once it accepts.
func (p *procs) startRole(cpu int, role string, args ...string) (*child, error) {
	cmd := p.command(context.Background(), cpu, p.self, append([]string{"-role", role}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	c := p.track(role, cmd, stdin)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		addr, found := strings.CutPrefix(line, "listening ")
		if !ok || !found {
			p.stop(c)
			return nil, fmt.Errorf("%s did not start (said %q)", role, line)
		}
		c.addr = addr
		return c, nil
	case <-time.After(15 * time.Second):
		p.stop(c)
		return nil, fmt.Errorf("%s did not start within 15s", role)
	}
}

// stop ends one child: stdin closed (role children exit on EOF), SIGTERM,
// then SIGKILL if it is still there after a few seconds.
func (p *procs) stop(c *child) {
	if c.stdin != nil {
		_ = c.stdin.Close()
	}
	select {
	case <-c.done:
		return
	case <-time.After(200 * time.Millisecond):
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// stopAll ends every child still running.
func (p *procs) stopAll() {
	p.mu.Lock()
	children := p.children
	p.children = nil
	p.mu.Unlock()
	for _, c := range children {
		p.stop(c)
	}
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// findTaskset returns the taskset binary if it can pin to both cores.
func findTaskset(cpus ...int) (string, error) {
	path, err := exec.LookPath("taskset")
	if err != nil {
		return "", errors.New("taskset not found")
	}
	for _, cpu := range cpus {
		if out, err := exec.Command(path, "-c", strconv.Itoa(cpu), "true").CombinedOutput(); err != nil {
			return "", fmt.Errorf("taskset -c %d: %v: %s", cpu, err, strings.TrimSpace(string(out)))
		}
	}
	return path, nil
}

// pinSelf moves every thread of this process to cpu, so the orchestrator
// stays off the core of the proxy under test.
func pinSelf(taskset string, cpu int) error {
	out, err := exec.Command(taskset, "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls url until it answers 200, the child exits, or timeout.
func waitReady(url string, c *child, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if c.exited() {
			return fmt.Errorf("exited before ready: %v", c.err)
		}
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s (last: %s)", timeout, last)
}

// procStatus returns a field of /proc/<pid>/status in kB (VmHWM, VmRSS).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuTime returns the user+system CPU time a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	// After ')': state(0) ... utime(11) stime(12), in clock ticks (USER_HZ=100).
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat times")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// machine describes where the benchmark ran.
type machine struct {
	CPUs   int
	Model  string
	Kernel string
	Go     string
	Date   string
}

func machineFacts() machine {
	m := machine{Go: runtime.Version(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Model: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "processor":
				m.CPUs++
			case "model name":
				m.Model = strings.TrimSpace(v)
			}
		}
	}
	if m.CPUs == 0 {
		m.CPUs = runtime.NumCPU()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// gatewayVersion asks the gateway binary for its version (best effort).
func gatewayVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
