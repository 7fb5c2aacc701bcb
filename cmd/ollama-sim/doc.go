// Command ollama-sim simulates an Ollama server (v0.17 API) for corral's
// tests: the native /api endpoints, the OpenAI-compatible /v1 ones (chat,
// completions, embeddings, models, and the Responses API) and Anthropic's
// Messages API (/v1/messages), with Ollama's field names, JSON shapes,
// status codes and error messages, but with deterministic text, token
// counts and timing, and faults on demand.
// Its image (see package simimage) replaces ollama/ollama in integration
// tests, and in README.md's quick start (scripts/sim-image); `ollama-sim
// serve` is accepted like the real binary.
//
// # Environment
//
// Read as real Ollama reads them:
//
//	OLLAMA_HOST            listen address: "0.0.0.0:11434", "0.0.0.0", ":8080",
//	                       "http://host:port"; default 127.0.0.1:11434
//	                       (the --addr flag overrides it)
//	OLLAMA_MODELS          models directory; default $HOME/.ollama/models,
//	                       /root/.ollama/models when HOME is unset
//	OLLAMA_KEEP_ALIVE      default keep-alive: Go duration or seconds,
//	                       negative = forever; default 5m
//	OLLAMA_NUM_PARALLEL    concurrent generations per loaded model; default 1
//	OLLAMA_MAX_QUEUE       requests waiting for a model before 503; default 512
//	OLLAMA_CONTEXT_LENGTH  context_length of loaded models; default by VRAM
//	                       (4096 under 23 GiB, 32768 under 47 GiB, else 262144)
//
// Simulator settings:
//
//	SIM_VERSION   the /api/version answer; default 0.17.4
//	SIM_MODELS    comma list of catalogue models written into the models
//	              directory at start when missing; default
//	              "llama3.2:1b,qwen2.5:0.5b"; set but empty = none
//	SIM_*         the initial value of every /_sim/config field, upper-cased:
//	              SIM_FIRST_TOKEN_DELAY, SIM_TOKEN_INTERVAL, SIM_LOAD_DELAY,
//	              SIM_DEFAULT_TOKENS, SIM_PULL_BYTES_PER_SEC, SIM_PULL_DURATION,
//	              SIM_VRAM_BYTES, SIM_FAIL_STATUS, SIM_FAIL_COUNT, SIM_FAIL_RATE,
//	              SIM_FAIL_MESSAGE, SIM_SEED, SIM_HANG, SIM_CUT_AFTER_TOKENS,
//	              SIM_EXIT_AFTER_REQUESTS, SIM_EXIT_AFTER_TOKENS. Durations
//	              are Go durations or a bare integer of milliseconds.
//
// # Runtime knobs: GET/POST /_sim/config
//
// JSON; a POST changes only the fields it sends. Durations are written as
// Go duration strings ("250ms"); a bare JSON number is read as milliseconds.
//
//	first_token_delay    duration before the first token (default 0)
//	token_interval       duration between further tokens (default 0)
//	load_delay           duration to load a model that is not loaded (default 0)
//	default_tokens       tokens generated when the request sets no
//	                     num_predict / max_tokens (default 16)
//	pull_bytes_per_sec   simulated download speed in bytes/s (0 = instant)
//	pull_duration        total duration of a pull; wins over pull_bytes_per_sec
//	vram_bytes           memory budget for loaded models (default 16 GiB)
//	fail_status          status of injected failures (default 500)
//	fail_count           the next N inference requests fail (counts down)
//	fail_rate            probability in [0,1] that an inference request fails
//	fail_message         error text (default: Ollama's text for the status)
//	seed                 seed of fail_rate's generator; setting it reseeds (default 1)
//	hang                 inference requests never answer until the client leaves
//	cut_after_tokens     generations drop the connection after N tokens
//	exit_after_requests  exit(1) after N more completed inference requests (counts down)
//	exit_after_tokens    exit(1) right after N more generated tokens (counts down)
//
// GET /_sim/stats reports counters (requests by route, statuses, inference
// requests by model, in-flight now, cancelled: requests whose client left
// before their end, tokens, loads, evictions, pulls, faults, loaded
// models); POST /_sim/reset zeroes them; POST /_sim/exit
// exits with status 1 right after answering.
//
// # Determinism
//
// Generated text, token counts and embeddings follow fixed rules, so a test
// can predict them: see generate.go (tokenText, promptTokens, embedTokens,
// embedding). Models live on disk in Ollama's layout (see models.go), so
// simulators sharing a models volume share pulls.
package main
