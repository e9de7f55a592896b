# Shared by the benchmark scripts (source it): free loopback ports, a
# private nginx-rtmp instance, and waiting for a port to listen.

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (up to $2 seconds, default 20) until something listens on 127.0.0.1:$1.
wait_port() {
    local port=$1 limit=$(( ${2:-20} * 10 ))
    for _ in $(seq "$limit"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$port" >&2
    return 1
}

# Starts nginx-rtmp in the background with a private prefix DIR, listening on
# 127.0.0.1:PORT with `application live { live on; }`; waits until it listens.
start_private_nginx() {
    local dir=$1 port=$2 module
    module=$(dpkg -L libnginx-mod-rtmp | grep '\.so$' | head -1)
    mkdir -p "$dir/logs"
    cat > "$dir/nginx.conf" <<CONF
load_module $module;
daemon off; master_process off; pid $dir/nginx.pid; error_log $dir/error.log;
events {}
rtmp { server { listen 127.0.0.1:$port; chunk_size 4096; application live { live on; } } }
CONF
    nginx -p "$dir" -c "$dir/nginx.conf" &
    wait_port "$port"
}
