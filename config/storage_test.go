package config

import (
	"strings"
	"testing"
)

func TestStorageAndClusterSections(t *testing.T) {
	cfg, err := load(t, writeConfig(t, `
storage:
  type: s3
  s3: {endpoint: "127.0.0.1:7070", bucket: media, prefix: "mps/", access_key: a, secret_key: b}
cluster:
  enabled: true
  postgres: "postgres://mps@127.0.0.1:5432/mps"
  address: "http://10.0.0.5:8080"
  roles: [worker]
  playback: redirect
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.S3.Bucket != "media" || cfg.Storage.S3.PartSize != 16<<20 || !cfg.Storage.S3.PathStyle {
		t.Errorf("storage %+v", cfg.Storage)
	}
	if !cfg.Cluster.HasRole(RoleWorker) || cfg.Cluster.HasRole(RoleIngest) || cfg.Cluster.Playback != "redirect" {
		t.Errorf("cluster %+v", cfg.Cluster)
	}
	if d := Default(); !d.Cluster.HasRole(RoleIngest) {
		t.Error("a single node takes every role")
	}

	_, err = load(t, writeConfig(t, `
storage:
  type: s3
  s3: {endpoint: "http://x/", part_size: 1000, prefix: "/abs"}
cluster:
  enabled: true
  address: "10.0.0.5:8080"
  roles: [cook]
  playback: teleport
`))
	if err == nil {
		t.Fatal("bad sections accepted")
	}
	for _, want := range []string{
		`storage.s3.endpoint "http://x/"`, "storage.s3.bucket: must be set", `storage.s3.prefix "/abs"`, "storage.s3.part_size 1000",
		"cluster.postgres: must name", `cluster.address "10.0.0.5:8080"`, `cluster.roles: "cook"`, `cluster.playback "teleport"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := load(t, writeConfig(t, "storage: {type: ftp}\n")); err == nil || !strings.Contains(err.Error(), `storage.type "ftp"`) {
		t.Errorf("storage.type ftp: %v", err)
	}
}
