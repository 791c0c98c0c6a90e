package cli

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type gitServerOptions struct {
	root, listen, hookURL, hookSecretFile, addrFile string
}

// newDevGitServerCommand serves bare repositories over smart HTTP with the
// real `git http-backend`, and after every push POSTs a signed push hook,
// as a git host would. For the demo and local trials.
func newDevGitServerCommand() *cobra.Command {
	o := &gitServerOptions{}
	cmd := &cobra.Command{
		Use:   "git-server",
		Short: "Serve bare git repositories over HTTP (git http-backend) and send signed push hooks",
		Example: `  git init --bare /tmp/git/platform/config.git
  strata dev git-server --root /tmp/git --listen 127.0.0.1:8929 \
    --hook-url http://127.0.0.1:9292/hook --hook-secret-file hook.secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.root, "root", "", "directory of bare repositories")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "listen address")
	f.StringVar(&o.hookURL, "hook-url", "", "push hook URL to notify after each push (strata reconcile --hook-addr)")
	f.StringVar(&o.hookSecretFile, "hook-secret-file", "", "shared secret to sign push hooks with (HMAC-SHA256, GitHub style)")
	f.StringVar(&o.addrFile, "addr-file", "", "write the base URL here once listening")
	_ = cmd.MarkFlagRequired("root")
	return cmd
}

func (o *gitServerOptions) run(cmd *cobra.Command) error {
	backend, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return fmt.Errorf("git is needed: %w", err)
	}
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	var secret []byte
	if o.hookURL != "" {
		if secret, err = os.ReadFile(o.hookSecretFile); err != nil {
			return fmt.Errorf("--hook-url needs --hook-secret-file: %w", err)
		}
		secret = bytes.TrimSpace(secret)
	}
	h := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(backend)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.receivepack", "GIT_CONFIG_VALUE_0=true"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if o.hookURL != "" && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			go o.notify(cmd, secret, r.URL.Path)
		}
	})
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	base := "http://" + l.Addr().String()
	fmt.Fprintf(cmd.OutOrStdout(), "serving %s at %s\n", root, base)
	if o.addrFile != "" {
		if err := os.WriteFile(o.addrFile, []byte(base), 0o644); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-cmd.Context().Done(); srv.Close() }()
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

func (o *gitServerOptions) notify(cmd *cobra.Command, secret []byte, path string) {
	repo := strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/git-receive-pack")
	body := []byte(fmt.Sprintf(`{"repository":{"full_name":%q},"pusher":"strata-dev"}`, repo))
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, o.hookURL, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "push hook to %s: %v\n", o.hookURL, err)
		return
	}
	resp.Body.Close()
}
