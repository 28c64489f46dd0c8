package livecaptions

import (
	"encoding/binary"
	"math"
	"time"
)

// SampleRate is the rate of the audio handed to recognition engines:
// 16 kHz mono, 16-bit little-endian.
const SampleRate = 16000

// frameSamples is the analysis frame of the voice activity detector: 20 ms.
const frameSamples = SampleRate / 50

// chunk is a run of audio to recognise, starting at sample Start of the
// session's audio.
type chunk struct {
	Start  int64
	PCM    []byte
	Speech bool // whether any frame was loud enough to be speech
}

// Duration is the chunk's length.
func (c chunk) Duration() time.Duration { return samplesToDuration(int64(len(c.PCM) / 2)) }

func samplesToDuration(n int64) time.Duration {
	return time.Duration(n) * time.Second / SampleRate
}

// chunker cuts 16 kHz s16le audio into chunks for recognition: at a pause
// (a run of quiet frames) once the chunk is long enough, and at MaxChunk
// at the latest, at its quietest frame near the end, so that captions
// trail the audio by at most MaxChunk plus the recognition time.
type chunker struct {
	// MaxChunk bounds a chunk; MinChunk is the shortest cut at a pause.
	MaxChunk, MinChunk time.Duration
	// Pause is how long a quiet run must last to end a chunk.
	Pause time.Duration
	// SilenceDB is the level, in dBFS, under which a frame is quiet.
	SilenceDB float64

	start   int64  // sample index of buf's first sample
	buf     []byte // pending PCM, whole samples only
	carry   []byte // an odd trailing byte
	quiet   int    // quiet frames at the end of buf
	speech  bool   // buf has a loud frame
	scanned int    // bytes of buf already analysed
	levels  []float64
}

func newChunker(maxChunk time.Duration) *chunker {
	return &chunker{MaxChunk: maxChunk, MinChunk: min(time.Second, maxChunk/2), Pause: 300 * time.Millisecond, SilenceDB: -40}
}

// frameLevel is the RMS level of a frame in dBFS.
func frameLevel(pcm []byte) float64 {
	var sum float64
	n := len(pcm) / 2
	if n == 0 {
		return math.Inf(-1)
	}
	for i := 0; i < n; i++ {
		v := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
		sum += v * v
	}
	rms := math.Sqrt(sum/float64(n)) / 32768
	if rms == 0 {
		return math.Inf(-1)
	}
	return 20 * math.Log10(rms)
}

// write adds PCM and returns the chunks it completes.
func (c *chunker) write(p []byte) []chunk {
	if len(c.carry) > 0 {
		p = append(c.carry, p...)
		c.carry = nil
	}
	if len(p)%2 == 1 {
		c.carry = []byte{p[len(p)-1]}
		p = p[:len(p)-1]
	}
	c.buf = append(c.buf, p...)
	var out []chunk
	const frameBytes = 2 * frameSamples
	maxBytes := int(c.MaxChunk.Seconds()*SampleRate) * 2
	minBytes := int(c.MinChunk.Seconds()*SampleRate) * 2
	pauseFrames := max(1, int(c.Pause/(20*time.Millisecond)))
	for c.scanned+frameBytes <= len(c.buf) {
		level := frameLevel(c.buf[c.scanned : c.scanned+frameBytes])
		c.levels = append(c.levels, level)
		c.scanned += frameBytes
		if level < c.SilenceDB {
			c.quiet++
		} else {
			c.quiet = 0
			c.speech = true
		}
		switch {
		case c.quiet >= pauseFrames && c.scanned >= minBytes:
			// Cut in the middle of the pause.
			cut := c.scanned - (c.quiet/2)*frameBytes
			out = append(out, c.cut(cut))
		case c.scanned >= maxBytes:
			out = append(out, c.cut(c.quietestCut()))
		}
	}
	return out
}

// quietestCut is the end of the quietest frame in the last quarter of
// the pending audio.
func (c *chunker) quietestCut() int {
	const frameBytes = 2 * frameSamples
	n := len(c.levels)
	best := n - 1
	for i := n - 1; i >= n-max(1, n/4); i-- {
		if c.levels[i] < c.levels[best] {
			best = i
		}
	}
	return (best + 1) * frameBytes
}

// cut ends a chunk at byte offset at of buf.
func (c *chunker) cut(at int) chunk {
	const frameBytes = 2 * frameSamples
	ch := chunk{Start: c.start, PCM: append([]byte(nil), c.buf[:at]...)}
	frames := at / frameBytes
	for _, l := range c.levels[:frames] {
		if l >= c.SilenceDB {
			ch.Speech = true
			break
		}
	}
	c.start += int64(at / 2)
	c.buf = append(c.buf[:0], c.buf[at:]...)
	c.levels = append(c.levels[:0], c.levels[frames:]...)
	c.scanned -= at
	c.quiet = 0
	for i := len(c.levels) - 1; i >= 0 && c.levels[i] < c.SilenceDB; i-- {
		c.quiet++
	}
	c.speech = false
	for _, l := range c.levels {
		if l >= c.SilenceDB {
			c.speech = true
		}
	}
	return ch
}

// flush returns what is pending as a last chunk, if anything.
func (c *chunker) flush() (chunk, bool) {
	if len(c.buf) == 0 {
		return chunk{}, false
	}
	ch := chunk{Start: c.start, PCM: append([]byte(nil), c.buf...), Speech: c.speech}
	c.start += int64(len(c.buf) / 2)
	c.buf, c.levels, c.scanned, c.quiet, c.speech = c.buf[:0], c.levels[:0], 0, 0, false
	return ch, true
}

// wavHeader is the 44-byte header of a 16 kHz mono s16le WAV file of n
// data bytes.
func wavHeader(n int) []byte {
	h := make([]byte, 44)
	copy(h, "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+n))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 1) // mono
	binary.LittleEndian.PutUint32(h[24:], SampleRate)
	binary.LittleEndian.PutUint32(h[28:], SampleRate*2)
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(n))
	return h
}
