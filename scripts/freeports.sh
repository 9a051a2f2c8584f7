# freeports N: N ports free on 127.0.0.1 now. Sourced by the benchmark
# scripts that start clusters on ports of their own.
freeports() {
  python3 - "$1" <<'PY'
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss:
    s.close()
PY
}
