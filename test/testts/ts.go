// Package testts publishes MPEG-TS files made by ffmpeg at test time into
// a hub, the way an SRT or HLS ingest would.
package testts

import (
	"bytes"
	"testing"
	"time"

	"github.com/mps-dev/mps/ingest/tsdemux"
	"github.com/mps-dev/mps/stream"
)

// Publish publishes the access units of an MPEG-TS file (made by ffmpeg
// at test time) into hub as name, in real time, until the file ends or
// the test does. It returns the tracks published.
func Publish(t testing.TB, hub *stream.Hub, name string, ts []byte) []*stream.Track {
	t.Helper()
	var units []tsdemux.Unit
	d := &tsdemux.Demuxer{R: bytes.NewReader(ts), OnUnit: func(u tsdemux.Unit) error {
		units = append(units, u)
		return nil
	}}
	if err := d.Initialize(); err != nil {
		t.Fatal(err)
	}
	for d.Read() == nil {
	}
	tracks := map[*tsdemux.Track]*stream.Track{}
	var list []*stream.Track
	for _, u := range units {
		if _, ok := tracks[u.Track]; !ok && u.Codec != nil {
			st := &stream.Track{Index: len(list), Codec: u.Codec, ClockRate: u.Track.ClockRate}
			tracks[u.Track] = st
			list = append(list, st)
		}
	}
	pub, err := hub.Publish(name, list, stream.PublishOptions{Protocol: "srt", RemoteAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for _, u := range units {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(u.DTS))):
			}
			pub.WriteUnit(&stream.AccessUnit{Track: tracks[u.Track], DTS: u.DTS, PTS: u.PTS, Key: u.Key, Payload: u.Payload})
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		pub.Close(nil)
	})
	return list
}
