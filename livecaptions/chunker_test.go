package livecaptions

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// tone is d of a 440 Hz tone at amplitude amp (0..1), 16 kHz s16le.
func tone(d time.Duration, amp float64) []byte {
	n := int(d.Seconds() * SampleRate)
	b := make([]byte, 2*n)
	for i := range n {
		v := amp * 32767 * math.Sin(2*math.Pi*440*float64(i)/SampleRate)
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(v)))
	}
	return b
}

// checkContiguous checks that chunks follow each other without gap or
// overlap and add up to total bytes.
func checkContiguous(t *testing.T, chunks []chunk, total int) {
	t.Helper()
	var next int64
	n := 0
	for _, c := range chunks {
		if c.Start != next {
			t.Fatalf("chunk starts at sample %d, want %d", c.Start, next)
		}
		next += int64(len(c.PCM) / 2)
		n += len(c.PCM)
	}
	if n != total {
		t.Fatalf("chunks hold %d bytes of %d", n, total)
	}
}

func TestChunkerCutsAtPauses(t *testing.T) {
	c := newChunker(4 * time.Second)
	var in []byte
	in = append(in, tone(1500*time.Millisecond, 0.5)...) // speech
	in = append(in, tone(600*time.Millisecond, 0)...)    // a pause
	in = append(in, tone(1200*time.Millisecond, 0.5)...) // speech
	var chunks []chunk
	// Odd-sized writes, as a pipe delivers.
	for i := 0; i < len(in); i += 999 {
		chunks = append(chunks, c.write(in[i:min(i+999, len(in))])...)
	}
	if last, ok := c.flush(); ok {
		chunks = append(chunks, last)
	}
	checkContiguous(t, chunks, len(in))
	if len(chunks) != 2 {
		t.Fatalf("%d chunks, want 2 (cut in the pause)", len(chunks))
	}
	cut := samplesToDuration(chunks[1].Start)
	if cut < 1500*time.Millisecond || cut > 2100*time.Millisecond {
		t.Errorf("cut at %s, want inside the pause (1.5 s - 2.1 s)", cut)
	}
	if !chunks[0].Speech || !chunks[1].Speech {
		t.Error("speech chunks not marked")
	}
}

func TestChunkerBoundsChunks(t *testing.T) {
	c := newChunker(2 * time.Second)
	in := tone(7*time.Second, 0.5) // speech with no pause
	chunks := c.write(in)
	if last, ok := c.flush(); ok {
		chunks = append(chunks, last)
	}
	checkContiguous(t, chunks, len(in))
	for _, k := range chunks {
		if k.Duration() > 2*time.Second {
			t.Errorf("chunk of %s, longer than 2 s", k.Duration())
		}
	}
	silent := newChunker(2 * time.Second).write(tone(3*time.Second, 0))
	if len(silent) == 0 || silent[0].Speech {
		t.Errorf("silence: %d chunks, speech %v", len(silent), len(silent) > 0 && silent[0].Speech)
	}
}

func TestWAVHeader(t *testing.T) {
	h := wavHeader(3200)
	if string(h[:4]) != "RIFF" || string(h[8:16]) != "WAVEfmt " || binary.LittleEndian.Uint32(h[40:]) != 3200 ||
		binary.LittleEndian.Uint32(h[24:]) != SampleRate || binary.LittleEndian.Uint32(h[4:]) != 36+3200 {
		t.Fatalf("header % x", h)
	}
}

// FuzzChunker checks that any audio, written in any pieces, comes out as
// contiguous chunks no longer than the bound.
func FuzzChunker(f *testing.F) {
	f.Add(tone(300*time.Millisecond, 0.5), uint16(100))
	f.Add(append(tone(time.Second, 0.9), tone(time.Second, 0)...), uint16(7))
	f.Add([]byte{1}, uint16(1))
	f.Fuzz(func(t *testing.T, pcm []byte, step uint16) {
		c := newChunker(500 * time.Millisecond)
		st := int(step%4096) + 1
		var chunks []chunk
		for i := 0; i < len(pcm); i += st {
			chunks = append(chunks, c.write(pcm[i:min(i+st, len(pcm))])...)
		}
		if last, ok := c.flush(); ok {
			chunks = append(chunks, last)
		}
		checkContiguous(t, chunks, len(pcm)-len(pcm)%2)
		for _, k := range chunks {
			if k.Duration() > 500*time.Millisecond+20*time.Millisecond {
				t.Fatalf("chunk of %s", k.Duration())
			}
		}
	})
}
