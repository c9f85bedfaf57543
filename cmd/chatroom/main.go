// Command chatroom serves a chat room, or joins one from the terminal.
//
// Usage:
//
//	chatroom [serve] [flags]      serve a room (the default)
//	chatroom join [flags] ADDR    join a room: print what arrives, send what you type
//	chatroom help [serve|join]    print the usage and the flags
//	chatroom version              print the version (also: chatroom -version)
//
// Run "chatroom help" for the flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

func main() {
	err := dispatch(os.Args[1:], os.Stdin, os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "chatroom:", err)
		os.Exit(2)
	case err != nil:
		msg := err.Error()
		if !strings.HasPrefix(msg, "chatroom: ") { // the engine's errors say whose they are already
			msg = "chatroom: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// flagError makes an error of flag.FlagSet.Parse a usageError, but for
// flag.ErrHelp (-h), which exits 0.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err.Error()}
}

const usage = `Usage:

  chatroom [serve] [flags]      serve a room (the default)
  chatroom join [flags] ADDR    join a room: print what arrives, send what you type
  chatroom help [serve|join]    print this, or one command's usage
  chatroom version              print the version (also: chatroom -version)
`

// dispatch runs the command that args name: serve unless the first
// argument names another.
func dispatch(args []string, stdin io.Reader, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "serve", "join", "help", "version":
			cmd, args = args[0], args[1:]
		case "-version", "--version":
			cmd, args = "version", args[1:]
		}
	}
	switch cmd {
	case "join":
		return join(args, stdin, stdout)
	case "help":
		return help(args, stdout)
	case "version":
		if len(args) > 0 {
			return usageError{fmt.Sprintf("version: unexpected argument %q", args[0])}
		}
		_, err := io.WriteString(stdout, versionText(debug.ReadBuildInfo()))
		return err
	default:
		return serve(args)
	}
}

// help writes the usage of every command, or of the one args names, with
// its flags.
func help(args []string, w io.Writer) error {
	sets := map[string]*flag.FlagSet{"serve": serveFlags(new(serveConfig)), "join": joinFlags(new(joinConfig))}
	if len(args) > 1 {
		return usageError{fmt.Sprintf("help: unexpected argument %q", args[1])}
	}
	if len(args) == 1 {
		fs, ok := sets[args[0]]
		if !ok {
			return usageError{fmt.Sprintf("help: no command %q (serve, join)", args[0])}
		}
		fs.SetOutput(w)
		fs.Usage()
		return nil
	}
	fmt.Fprint(w, usage+"\n")
	for _, name := range []string{"serve", "join"} {
		sets[name].SetOutput(w)
		sets[name].Usage()
		fmt.Fprintln(w)
	}
	return nil
}

// versionText describes the build that info (from debug.ReadBuildInfo)
// records: the module's version, the commit it was built from when the
// build recorded one, and the Go release that built it.
func versionText(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return fmt.Sprintf("chatroom: no build information in this binary (%s)\n", runtime.Version())
	}
	settings := make(map[string]string)
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	var b strings.Builder
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	fmt.Fprintf(&b, "chatroom %s\n", version)
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "revision %s", rev)
		if settings["vcs.modified"] == "true" {
			b.WriteString(" (with uncommitted changes)")
		}
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, ", committed %s", t)
		}
		b.WriteString("\n")
	}
	goos, goarch := settings["GOOS"], settings["GOARCH"]
	if goos == "" || goarch == "" {
		goos, goarch = runtime.GOOS, runtime.GOARCH
	}
	fmt.Fprintf(&b, "built with %s for %s/%s\n", info.GoVersion, goos, goarch)
	return b.String()
}
