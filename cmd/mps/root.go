package main

import (
	"io"

	"github.com/spf13/cobra"
)

// newRootCommand builds the command tree. Output goes to stdout and
// stderr, so that tests can run commands in-process.
func newRootCommand(version string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "mps",
		Short: "MPS media server: RTMP ingest, live transcoding ladders, LL-HLS and DASH playback, admin API",
		Long: "MPS takes live streams from encoders over RTMP, transcodes them into\n" +
			"adaptive-bitrate ladders, and serves them to players as low-latency HLS and\n" +
			"DASH, with an admin API and Prometheus metrics.\n\n" +
			"Start it with `mps serve`.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newServeCommand(version, stderr),
		newSignKeyCommand(stdout, stderr),
		newVersionCommand(version, stdout),
		newJobCommand(stdout, stderr),
	)
	return root
}
