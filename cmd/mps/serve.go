package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mps-dev/mps/config"
)

func newServeCommand(version string, stderr io.Writer) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the media server",
		Long: "Run the media server until SIGINT or SIGTERM.\n\n" +
			"The configuration file is --config, else $MPS_CONFIG, else " + config.DefaultPath +
			"\n(built-in defaults when that file is missing). The other variables below\n" +
			"override single values, e.g. MPS_HTTP_ADDRESS=127.0.0.1:8080:\n\n  " +
			strings.Join(config.EnvNames(), "\n  "),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := config.LoadOptions{}
			if cmd.Flags().Changed("config") {
				opts.Path = configPath
			}
			cfg, err := config.Load(opts)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, stderr)
			log.Info("mps starting", "version", fullVersion(version), "config", configSource(cfg))
			srv, err := startServer(cfg, log)
			if err != nil {
				return err
			}
			return srv.run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", config.DefaultPath, "configuration file")
	return cmd
}

func configSource(cfg *config.Config) string {
	if cfg.Source == "" {
		return fmt.Sprintf("built-in defaults (%s not found)", config.DefaultPath)
	}
	return cfg.Source
}
