#!/usr/bin/env bash
# Runs the README's "Deploying" section on this machine: the same openssl
# and node commands, with the three hosts played by 127.0.0.1, 127.0.0.2 and
# 127.0.0.3 (all of 127.0.0.0/8 is loopback on Linux). It makes the
# certificates, starts the three members with peer mTLS and client TLS,
# writes through one and reads through the others with curl, checks that a
# client without a certificate is refused, and stops them.
#
#   scripts/tls-cluster.sh            # in a temporary directory
#   KEEP=1 scripts/tls-cluster.sh     # and leave it (certificates, logs) behind
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "left in $work"; fi
}
trap cleanup EXIT
cd "$work"
(cd "$repo" && go build -o "$work/node" ./cmd/node)

H1=127.0.0.1 H2=127.0.0.2 H3=127.0.0.3

# --- the README's commands, from here ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=raftkv CA" -keyout ca-key.pem -out ca.pem
for i in 1 2 3; do
  host=$(eval echo \$H$i)
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=raftkv-member" -keyout member$i-key.pem -out member$i.csr
  printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$host" > member$i.ext
  openssl x509 -req -in member$i.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
    -days 825 -extfile member$i.ext -out member$i.pem
done
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=client" -keyout client-key.pem -out client.csr
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -days 825 -extfile client.ext -out client.pem

CLUSTER=https://$H1:2380,https://$H2:2380,https://$H3:2380
for i in 1 2 3; do
  host=$(eval echo \$H$i)
  ./node --id $i --cluster $CLUSTER --initial-cluster-token prod-1 \
    --listen-peer-urls https://$host:2380 \
    --listen-client-urls https://$host:2379 --advertise-client-urls https://$host:2379 \
    --peer-cert-file member$i.pem --peer-key-file member$i-key.pem \
    --peer-trusted-ca-file ca.pem --peer-client-cert-auth --peer-cert-allowed-cn raftkv-member \
    --cert-file member$i.pem --key-file member$i-key.pem \
    --trusted-ca-file ca.pem --client-cert-auth > node$i.log 2>&1 &
  pids+=($!)
done
CURL="curl -s --cacert ca.pem --cert client.pem --key client-key.pem"
# --- to here ---

for _ in $(seq 100); do
  [ "$($CURL https://$H2:2379/healthz 2>/dev/null)" = ok ] && break
  sleep 0.1
done
$CURL -XPUT -d bar https://$H1:2379/v1/kv/foo; echo
got=$($CURL https://$H3:2379/v1/kv/foo)
[ "$got" = bar ] || { echo "read through member 3: '$got', want bar"; exit 1; }
$CURL https://$H2:2379/v1/members; echo
if curl -s --cacert ca.pem https://$H1:2379/v1/kv/foo >/dev/null; then
  echo "a client without a certificate was served"; exit 1
fi
echo "ok: three members over mTLS, write through $H1 read through $H3, a client without a certificate refused"
