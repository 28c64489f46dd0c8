package transcoder

// ThumbnailSink receives the JPEG thumbnails a ladder's FFmpeg child makes
// from the decode it already does.
type ThumbnailSink interface {
	// Put stores jpeg as the latest thumbnail of the stream name.
	Put(name string, jpeg []byte)
}
