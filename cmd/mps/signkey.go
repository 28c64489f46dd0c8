package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

func newSignKeyCommand(stdout, stderr io.Writer) *cobra.Command {
	var (
		secret     string
		ttl        time.Duration
		configPath string
	)
	cmd := &cobra.Command{
		Use:   "sign-key NAME",
		Short: "Print a signed, expiring stream key for the stream NAME (such as live/cam1)",
		Long: "Print a stream key that lets an encoder publish the stream NAME (application/stream,\n" +
			"such as live/cam1) until it expires. The secret is --secret, or else the\n" +
			"signing_secret of NAME's application in the configuration file.\n\n" +
			"The key goes to standard output; how to use it goes to standard error.",
		Example: "  mps sign-key live/cam1 --secret \"$SECRET\" --ttl 24h",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := stream.ValidateName(name); err != nil {
				return err
			}
			app, streamPart, ok := strings.Cut(name, "/")
			if !ok {
				return fmt.Errorf("%w: %q needs an application and a stream, such as live/cam1", stream.ErrInvalidName, name)
			}
			if ttl <= 0 {
				return fmt.Errorf("--ttl %s: must be more than 0", ttl)
			}
			if secret == "" {
				opts := config.LoadOptions{}
				if cmd.Flags().Changed("config") {
					opts.Path = configPath
				}
				s, err := secretFromConfig(opts, app)
				if err != nil {
					return err
				}
				secret = s
			}
			expiry := time.Now().Add(ttl).Truncate(time.Second)
			key := auth.SignKey(secret, name, expiry)
			if _, err := fmt.Fprintln(stdout, key); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "valid for %s until %s\npublish to rtmp://HOST/%s with stream key: %s?key=%s\n",
				name, expiry.UTC().Format(time.RFC3339), app, streamPart, key)
			return nil
		},
	}
	cmd.Flags().StringVar(&secret, "secret", "", "signing secret (default: the application's signing_secret in the configuration)")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the key stays valid")
	cmd.Flags().StringVarP(&configPath, "config", "c", config.DefaultPath, "configuration file to read the secret from when --secret is not given")
	return cmd
}

func secretFromConfig(opts config.LoadOptions, app string) (string, error) {
	cfg, err := config.Load(opts)
	if err != nil {
		return "", fmt.Errorf("no --secret given, and the configuration cannot be read: %w", err)
	}
	for _, a := range cfg.Applications {
		if a.Name != app {
			continue
		}
		if a.SigningSecret == "" {
			return "", fmt.Errorf("no --secret given, and application %q has no signing_secret in %s", app, configSourceName(cfg))
		}
		return a.SigningSecret, nil
	}
	return "", fmt.Errorf("no --secret given, and application %q is not in %s", app, configSourceName(cfg))
}

func configSourceName(cfg *config.Config) string {
	if cfg.Source == "" {
		return "the built-in configuration"
	}
	return cfg.Source
}
