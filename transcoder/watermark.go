package transcoder

// inputArgs returns the extra ffmpeg input arguments the watermark needs
// (the PNG for an image watermark), or nil.
func (w *Watermark) inputArgs() []string {
	return nil
}

// filter returns a filtergraph fragment that reads the pad [in] (and, for an
// image, the input numbered imageInput) and writes the watermarked video to
// the pad [out], e.g. "[in]null[out]".
func (w *Watermark) filter(in, out string, imageInput int) string {
	return "[" + in + "]null[" + out + "]"
}
