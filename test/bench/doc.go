// Package bench holds MPS's performance benchmarks. They drive the real mps
// binary as a separate process with real clients and read its CPU time and
// memory from /proc.
//
// The benchmarks are behind the build tag "bench", so `go test ./...` never
// runs them. `make bench` runs them with:
//
//	go test -tags bench -run '^$' -bench . -benchtime 1x -timeout 60m ./test/bench/
//
// Environment (all optional):
//
//	MPS_BENCH_DURATION    measured window of each phase (default 30s)
//	MPS_BENCH_WARMUP      settling time before each window (default 5s)
//	MPS_BENCH_READERS     LL-HLS reader counts of BenchmarkFanout (default 100,500)
//	MPS_BENCH_PUBLISHERS  RTMP publisher counts of BenchmarkIngest (default 1,10,50)
//	MPS_BENCH_LATENCY_READERS  background readers of BenchmarkLatency's loaded
//	                      phases (default 100; the first phase has none)
//	MPS_BENCH_RECORD_STREAMS  streams per server of BenchmarkRecording (default 20)
//	MPS_BENCH_RECORD_SEQUENTIAL=1  BenchmarkRecording runs its live and recording
//	                      servers one after the other instead of side by side
//	MPS_BENCH_JOB_ROUNDS  rounds (one mps run and one bare ffmpeg run each) of
//	                      BenchmarkAdaptiveJob and BenchmarkManySmallJobs (default 2)
//	MPS_BENCH_JOB_SIDE_BY_SIDE=1  BenchmarkAdaptiveJob runs the job and the bare
//	                      ffmpeg at the same time instead of one after the other
//	MPS_BENCH_SMALL_JOBS  jobs BenchmarkManySmallJobs submits at once (default 50)
//	MPS_BENCH_KEEP        keep the temporary folder (binary, media, logs)
//
// The machine that runs them is usually shared, so a benchmark never asserts
// a timing threshold: each one prints its figures next to a baseline
// measured in the same run, and the ratio between them. See RESULTS.md.
package bench
