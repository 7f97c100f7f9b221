# Shell helpers shared by scripts/demo.sh and scripts/bench-*.sh (sourced, not run).

# A port nothing listens on (random in 20000..59999, checked with a connect).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds, fails after SECONDS (wall
# clock: a COMMAND that takes a while itself, such as `buildah run`, does not stretch it).
wait_for() {
  local seconds=$1; shift
  local deadline=$(( $(now_ms) + seconds * 1000 ))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(now_ms)" -lt "$deadline" ] || break
    sleep 0.1
  done
  echo "timed out after ${seconds}s waiting for: $*" >&2
  return 1
}

# stop_pids PID...: SIGTERM, up to 5 s grace, then SIGKILL; each by PID.
stop_pids() {
  local pid i
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# write_manifest DIR FILE...: DIR/modelcache.json listing FILEs (relative to DIR) with size
# and sha256, as the http directory source reads it.
write_manifest() {
  local dir=$1; shift
  local entries=() f
  for f in "$@"; do
    entries+=("{\"path\": \"$f\", \"size\": $(stat -c %s "$dir/$f"), \"sha256\": \"$(cd "$dir" && sha256sum "$f" | cut -d' ' -f1)\"}")
  done
  (IFS=,; echo "{\"files\": [${entries[*]}]}") > "$dir/modelcache.json"
}

# start_nginx WORKDIR ROOT PORT: nginx (one process, so its PID is the whole server) serving
# ROOT on 127.0.0.1:PORT with directory listings; sets NGINX_PID. Disk reads go to nginx's
# thread pool (aio threads): in its one process a read from a cold page cache would otherwise
# block every other connection, so concurrent range requests were read from the disk one at a
# time (~0.66 GB/s here), an origin no real server is.
start_nginx() {
  local work=$1 root=$2 port=$3
  mkdir -p "$work"
  cat > "$work/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log $work/access.log;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi;
  uwsgi_temp_path $work/uwsgi;
  scgi_temp_path $work/scgi;
  sendfile on;
  aio threads;
  types { application/json json; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$port;
    root $root;
    autoindex on;
  }
}
CONF
  /usr/sbin/nginx -c "$work/nginx.conf" -p "$work" &
  NGINX_PID=$!
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
}

# generate_bench_model DIR GIB: a model of GIB GiB in DIR (one file of 3/4 of it, four smaller
# ones; random bytes) with its modelcache.json. Sets `files` (names) and `model_bytes`.
generate_bench_model() {
  local model=$1 gib=$2 total_mib big_mib small_mib i name
  total_mib=$(awk -v g="$gib" 'BEGIN {printf "%d", g * 1024}')
  [ "$total_mib" -ge 8 ] || { echo "bench: BENCH_GIB too small" >&2; exit 2; }
  big_mib=$((total_mib * 3 / 4))
  small_mib=$(((total_mib - big_mib) / 4))
  mkdir -p "$model"
  echo "bench: generating ${total_mib} MiB model in $model" >&2
  files=(model-00001.safetensors)
  head -c $((big_mib << 20)) /dev/urandom > "$model/model-00001.safetensors"
  for i in 2 3 4 5; do
    name=$(printf 'model-%05d.safetensors' "$i")
    head -c $((small_mib << 20)) /dev/urandom > "$model/$name"
    files+=("$name")
  done
  write_manifest "$model" "${files[@]}"
  model_bytes=$(cd "$model" && cat "${files[@]}" | wc -c)
}

# start_registry WORK PORT: Debian's docker-registry (the CNCF distribution registry) on
# 127.0.0.1:PORT with its storage under WORK; sets REGISTRY_PID.
start_registry() {
  local work=$1 port=$2
  mkdir -p "$work/data"
  cat > "$work/config.yml" <<CONF
version: 0.1
log: {level: warn, formatter: text, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $work/data}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: "127.0.0.1:$port", secret: modelcache-bench}
CONF
  /usr/bin/docker-registry serve "$work/config.yml" > "$work/registry.log" 2>&1 &
  REGISTRY_PID=$!
  wait_for 30 curl -sf -o /dev/null "http://127.0.0.1:$port/v2/"
}

# push_blob HOST REPO FILE: uploads FILE as one blob (POST, then a monolithic PUT, as a client
# does); prints its digest.
push_blob() {
  local host=$1 repo=$2 file=$3 digest location
  digest="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  location=$(curl -sSf -X POST -D - -o /dev/null "http://$host/v2/$repo/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
  case "$location" in /*) location="http://$host$location" ;; esac
  case "$location" in *\?*) location="$location&digest=$digest" ;; *) location="$location?digest=$digest" ;; esac
  curl -sSf -X PUT -H 'Content-Type: application/octet-stream' -T "$file" -o /dev/null "$location"
  echo "$digest"
}

# push_modelpack HOST REPO TAG DIR FILE...: a CNCF ModelPack artifact, one raw weight layer
# per file (at its org.cncf.model.filepath), under TAG. Sets OCI_BLOB_URLS (the layers' blob
# URLs).
push_modelpack() {
  local host=$1 repo=$2 tag=$3 dir=$4; shift 4
  local config="$dir/.modelpack-config.json" layers="" f digest size
  echo '{}' > "$config"
  local config_digest config_size
  config_digest=$(push_blob "$host" "$repo" "$config")
  config_size=$(stat -c %s "$config")
  rm -f "$config"
  OCI_BLOB_URLS=()
  for f in "$@"; do
    digest=$(push_blob "$host" "$repo" "$dir/$f")
    OCI_BLOB_URLS+=("http://$host/v2/$repo/blobs/$digest")
    size=$(stat -c %s "$dir/$f")
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.cncf.model.weight.v1.raw\",\"digest\":\"$digest\",\"size\":$size,\"annotations\":{\"org.cncf.model.filepath\":\"$f\"}}"
  done
  curl -sSf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' -o /dev/null \
    --data-binary "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"artifactType\":\"application/vnd.cncf.model.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.cncf.model.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size},\"layers\":[$layers]}" \
    "http://$host/v2/$repo/manifests/$tag"
}
