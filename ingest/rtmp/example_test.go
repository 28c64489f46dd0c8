package rtmp_test

import (
	"log"
	"time"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/rtmp"
	"github.com/mps-dev/mps/stream"
)

// This example accepts OBS or ffmpeg on port 1935. "live" takes publishers
// from loopback without a key, "studio" with a static or a signed key:
//
//	ffmpeg -re -i in.mp4 -c copy -f flv rtmp://127.0.0.1/live/cam1
//	ffmpeg -re -i in.mp4 -c copy -f flv "rtmp://HOST/studio/cam1?key=SECRET"
func ExampleServer() {
	hub := stream.NewHub(stream.HubConfig{})
	defer hub.Close()

	srv := &rtmp.Server{
		Addr: ":1935",
		Hub:  hub,
		Auth: &auth.Policy{Apps: []auth.App{
			{Name: "live", AllowLoopbackWithoutKey: true},
			{Name: "studio", Keys: []string{"SECRET"}, SigningSecret: "signing-secret"},
		}},
		OnPublish: func(pi rtmp.PublishInfo) {
			log.Printf("%s is live from %s", pi.Name, pi.RemoteAddr)
		},
	}
	if err := srv.Initialize(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// A key for studio/cam2 that works for one day.
	log.Println(auth.SignKey("signing-secret", "studio/cam2", time.Now().Add(24*time.Hour)))
	select {}
}
