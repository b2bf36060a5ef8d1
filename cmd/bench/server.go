package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildServer compiles ./cmd/server of this module into dir, so the bench
// runs the same binary main builds, flags and defaults included.
func buildServer(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the bench from inside the gatehouse module")
	}
	bin := filepath.Join(dir, "gatehouse")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/server")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/server: %w\n%s", err, out)
	}
	return bin, nil
}

// process is a child server: Gatehouse or the bare ceiling handler.
type process struct {
	cmd *exec.Cmd
	URL string
	// log is the child's standard error; Gatehouse writes its log there.
	log *os.File
}

// freeAddr picks a loopback port for a child to listen on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startProcess runs bin with args plus --addr and waits until path answers.
func startProcess(ctx context.Context, logPath, bin string, args ...string) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append(args, "--addr", addr)...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &process{cmd: cmd, URL: "http://" + addr, log: logFile}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("%s did not answer on %s: %v (log: %s)", filepath.Base(bin), addr, err, logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM, as an orchestrator would, and waits for the exit.
func (p *process) stop() error {
	defer p.log.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		return <-done
	}
}

// resetPeakRSS starts a new peak-RSS measurement (clear_refs 5 resets
// VmHWM to the current RSS).
func (p *process) resetPeakRSS() {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// peakRSS is the child's VmHWM in bytes, 0 where /proc is unavailable.
func (p *process) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the CPU time the child has used so far, user and system,
// from /proc/PID/stat (in clock ticks of 1/100 s on Linux); 0 where /proc
// is unavailable.
func (p *process) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, may hold spaces; the fields after its
	// closing parenthesis start at field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100)
}

// logSize is how far the child's log has grown, to count only the lines a
// scenario produced.
func (p *process) logSize() int64 {
	st, err := p.log.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// logProblems counts the log lines written since offset that report a
// failure: warnings, errors and any "database is locked". first is the
// first such line.
func (p *process) logProblems(offset int64) (problems, locked int, first string) {
	f, err := os.Open(p.log.Name())
	if err != nil {
		return 0, 0, ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return 0, 0, ""
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "database is locked") {
			locked++
		}
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			if problems == 0 {
				first = line
			}
			problems++
		}
	}
	return problems, locked, first
}

// ceilingFlag makes the bench binary serve the bare handler instead; the
// bench starts itself with it, so the ceiling runs in its own process as
// Gatehouse does.
const ceilingFlag = "-serve-ceiling"

// serveCeiling is the bare net/http handler: it answers a GET with a small
// JSON body and a POST after parsing its form, nothing else.
func serveCeiling(args []string) error {
	addr := ""
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--addr" {
			addr = args[i+1]
		}
	}
	body := []byte(`{"ok":true}` + "\n")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	mux.HandleFunc("POST /post", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	return http.ListenAndServe(addr, mux)
}
