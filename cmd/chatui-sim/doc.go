// Command chatui-sim stands in for the containers of corral's chat UI in
// integration tests, where no image can be pulled: Open WebUI, LobeChat,
// and LobeChat's PostgreSQL and MinIO. Its image (see package simimage)
// is FROM scratch; corral starts it in place of each real image.
//
// # Role
//
// The first argument when it names a role, else SIM_ROLE, else guessed
// from the variables the real image would be given (POSTGRES_* or PGDATA:
// postgres; MINIO_ROOT_*: minio; OPENAI_PROXY_URL, ACCESS_CODE,
// KEY_VAULTS_SECRET or NEXT_AUTH_SECRET: lobechat), else open-webui.
// Other arguments, such as MinIO's "server /data", are ignored.
//
//	role        port  serves
//	open-webui  8080  the chat UI endpoints below
//	lobechat    3210  the chat UI endpoints below
//	postgres    5432  TCP: closes every connection, except HTTP for /env
//	minio       9000  health probes and bucket creation
//
// PORT overrides the port. It listens on all interfaces, logs one line per
// request (postgres: per connection) to stdout, and on SIGTERM shuts down
// within a few seconds.
//
// # Chat UI roles
//
//	GET  /, /static/*   a page, "chat UI stand-in", naming the role; its
//	                    script echoes a message through /ws on the same
//	                    origin (wss: under https:) and shows the echo, and
//	                    sets data-ws="echoed" on <body>
//	GET  /health, /api/health   {"status":true}
//	GET  /env           the whole environment, a JSON object
//	GET  /request       the request as it arrived: method, host, headers
//	GET  /ws            websocket echoing every message; any origin
//	POST /chat          {"model","user","prompt"}: a streamed chat
//	                    completion upstream, its SSE events relayed as they
//	                    come; a non-200 answer is passed through
//	GET  /models        GET {base}/models, passed through
//	GET  /data          {"dir","files":{name: content}} of the data directory
//	POST /data          writes the body to note.txt there
//
// The upstream is OPENAI_API_BASE_URL (Open WebUI; else the first entry
// of OPENAI_API_BASE_URLS) or OPENAI_PROXY_URL (LobeChat), with
// "Authorization: Bearer $OPENAI_API_KEY". /chat posts
// {"model","stream":true,"messages":[{"role":"user","content":prompt}]}
// to {base}/chat/completions under a 2-minute deadline, with Open
// WebUI's forwarded user headers when "user" (an email) is set:
// X-OpenWebUI-User-Name (the part before "@"), X-OpenWebUI-User-Id (a
// UUID derived from the email's SHA-256), X-OpenWebUI-User-Email and
// X-OpenWebUI-User-Role ("user"); "user_name", "user_id" and
// "user_role" in the request override them.
//
// The data directory is SIM_DATA_DIR, else /app/backend/data for
// open-webui and none for lobechat. At each start the simulator appends
// a line to starts.log there, so a test can tell that a volume outlived a
// container.
//
// # MinIO role
//
//	GET  /minio/health/live, /minio/health/ready   200
//	PUT  /{bucket}      creates a bucket: 200, also when it exists
//	HEAD /{bucket}      200 when created, else 404
//	GET  /_sim/buckets  {"buckets":[{"name","access_key","created"}]}, the
//	                    access key read from the SigV4 Authorization header
//	GET  /env           the whole environment
package main
