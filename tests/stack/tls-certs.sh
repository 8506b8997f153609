#!/usr/bin/env bash
# Makes throwaway certificates for the TLS tests in DIR (created if missing):
#   ca.pem ca.key           a CA
#   server.pem server.key   the servers' certificate, signed by it, for localhost and 127.0.0.1
#   client.pem client.key   a client certificate signed by it (mutual TLS)
#   client-encrypted.key    client.key encrypted with the passphrase "secret"
#   other-ca.pem            an unrelated CA (a "wrong CA" for the client side)
# Keys are unencrypted RSA 2048 (fast to make), certificates valid for a day.
#
#   tls-certs.sh DIR
set -euo pipefail

dir=${1:?usage: tls-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
days=1

ca() { # NAME SUBJECT
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days "$days" \
    -subj "$2" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
}

leaf() { # NAME SUBJECT EXTENSIONS
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days "$days" \
    -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=ctxd test CA"
ca other-ca "/CN=ctxd unrelated CA"
leaf server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client "/CN=ctxd-client" "extendedKeyUsage=clientAuth"
openssl pkey -in client.key -aes256 -passout pass:secret -out client-encrypted.key
chmod 600 ./*.key
