#!/usr/bin/env bash
# Make a local CA and a webhook serving certificate for 127.0.0.1 (running the manager out of
# cluster with --cert-mode=files --cert-dir certs/out), and print the caBundle for webhook
# configurations. Everything goes to certs/out/, which git ignores: no key is ever committed.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p out
openssl ecparam -name prime256v1 -genkey -noout -out out/ca.key
openssl req -x509 -new -key out/ca.key -sha256 -days 365 -subj "/CN=telemetry-manager local CA" -out out/ca.crt
openssl ecparam -name prime256v1 -genkey -noout -out out/tls.key
openssl req -new -key out/tls.key -subj "/CN=127.0.0.1" -out out/tls.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > out/san.ext
openssl x509 -req -in out/tls.csr -CA out/ca.crt -CAkey out/ca.key -CAcreateserial -sha256 -days 30 \
  -extfile out/san.ext -out out/tls.crt
rm -f out/tls.csr out/san.ext out/ca.srl
echo "caBundle: $(base64 -w0 < out/ca.crt)"
