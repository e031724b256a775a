#!/usr/bin/env bash
# Makes a development CA and a server certificate signed by it, for localhost and 127.0.0.1.
#
#   certs/make-dev-certs.sh [OUT_DIR] [NAME ...]
#
# OUT_DIR defaults to certs/dev. Extra NAMEs are added to the certificate as DNS names (or IP
# addresses when they look like one). Existing files are kept: delete the folder to start again.
# For development and tests only: the CA key sits beside the certificates, unprotected.
set -euo pipefail

out=${1:-"$(dirname "$0")/dev"}
shift || true
mkdir -p "$out"
chmod 700 "$out"
cd "$out"

if [ -f server.crt ] && [ -f server.key ]; then
  echo "certs: $out already holds server.crt and server.key; keeping them" >&2
  exit 0
fi

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san="$san,IP:$name"; else san="$san,DNS:$name"; fi
done

umask 077
if [ ! -f ca.key ] || [ ! -f ca.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=labelgate development CA" -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 397 \
  -extfile server.ext -out server.crt 2>/dev/null
rm -f server.csr server.ext
chmod 644 ca.crt server.crt
echo "certs: made a development CA ($out/ca.crt) and a certificate for $san" >&2
