// Command rtmppub publishes H.265, AV1 or VP9 test video over Enhanced RTMP,
// which ffmpeg 5.1 cannot do:
//
//	rtmppub -codec h265 -duration 30s rtmp://127.0.0.1:1935/live/cam1
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/mps-dev/mps/test/rtmppub"
)

func main() {
	codec := flag.String("codec", "h265", "video codec: h265, av1 or vp9")
	duration := flag.Duration("duration", 30*time.Second, "how much video to send")
	width := flag.Int("width", 640, "picture width")
	height := flag.Int("height", 360, "picture height")
	fps := flag.Int("fps", 30, "frame rate")
	ffmpeg := flag.String("ffmpeg", "ffmpeg", "ffmpeg binary")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] rtmp://host[:port]/app/name[?key=...]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := rtmppub.Publish(ctx, rtmppub.Options{
		URL:      flag.Arg(0),
		Codec:    rtmppub.Codec(*codec),
		Duration: *duration,
		Width:    *width,
		Height:   *height,
		FPS:      *fps,
		FFmpeg:   *ffmpeg,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
