#!/bin/sh
# Certificates for the webhook without cert-manager (openssl 1.1.1 or later).
#   ./gen-certs.sh            CA (kept and reused) + a new serving certificate
# Environment: NAMESPACE (default kreconcile), SERVICE (default kreconcile-webhook),
# DAYS (serving certificate lifetime, default 365), OUT (directory, default: here).
#
# The CA key stays in this directory (git-ignored): renewing re-signs the serving
# certificate with the same CA, so the caBundle the API server trusts does not
# change and no webhook call fails while the new Secret reaches the pods.
set -eu
NAMESPACE=${NAMESPACE:-kreconcile}
SERVICE=${SERVICE:-kreconcile-webhook}
DAYS=${DAYS:-365}
OUT=${OUT:-$(cd "$(dirname "$0")" && pwd)}
cd "$OUT"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -f ca.key ] || [ ! -f ca.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 3650 -subj "/CN=${SERVICE}-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca.key -out ca.crt 2>/dev/null
  echo "wrote ca.crt, ca.key (new CA)"
fi

cat >"$work/ext" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:${SERVICE}.${NAMESPACE}.svc,DNS:${SERVICE}.${NAMESPACE}.svc.cluster.local
EXT
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=${SERVICE}.${NAMESPACE}.svc" -keyout tls.key -out "$work/tls.csr" 2>/dev/null
openssl x509 -req -in "$work/tls.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
  -days "$DAYS" -extfile "$work/ext" -out tls.crt 2>/dev/null
chmod 644 ca.crt tls.crt
echo "wrote tls.crt, tls.key for ${SERVICE}.${NAMESPACE}.svc (valid ${DAYS} days)"
