// Command peakrss runs a command (forwarding SIGTERM), writes the command's rusage to file
// descriptor 3 as JSON ({"MaxRSSKiB", "UserNS", "SysNS"}) and exits with its status. The e2e
// tests start the processes they measure through it: on Linux a child's ru_maxrss includes the
// resident memory of the process that started it (os/exec starts children with vfork, and exec
// keeps the old address space's high-water mark), and this command is small.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peakrss COMMAND [ARG]...")
		os.Exit(2)
	}
	report := os.NewFile(3, "usage")
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "peakrss:", err)
		os.Exit(2)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		for s := range sig {
			cmd.Process.Signal(s)
		}
	}()
	cmd.Wait()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if err := json.NewEncoder(report).Encode(map[string]int64{"MaxRSSKiB": ru.Maxrss, "UserNS": ru.Utime.Nano(), "SysNS": ru.Stime.Nano()}); err != nil {
		fmt.Fprintln(os.Stderr, "peakrss:", err)
		os.Exit(2)
	}
	os.Exit(cmd.ProcessState.ExitCode())
}
