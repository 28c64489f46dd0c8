package storage

import (
	"mime"
	"path"
	"strings"
)

// mediaTypes are the media types of the files MPS writes that the
// system's MIME table may not know.
var mediaTypes = map[string]string{
	".m3u8": "application/vnd.apple.mpegurl",
	".mpd":  "application/dash+xml",
	".m4s":  "video/iso.segment",
	".mp4":  "video/mp4",
	".m4a":  "audio/mp4",
	".webm": "video/webm",
	".mp3":  "audio/mpeg",
	".aac":  "audio/aac",
	".jpeg": "image/jpeg",
	".vtt":  "text/vtt; charset=utf-8",
	".srt":  "application/x-subrip",
	".json": "application/json",
	".jpg":  "image/jpeg",
	".png":  "image/png",
	".webp": "image/webp",
	".gif":  "image/gif",
}

// ContentType is the media type an object of key is stored with, so that
// browsers and players fetching it from the bucket treat it right.
func ContentType(key string) string {
	ext := strings.ToLower(path.Ext(key))
	if t, ok := mediaTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}
