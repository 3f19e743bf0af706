# Small X.509 / ECDSA P-256 / RSA PKCS#1 v1.5 toolkit for the OCPP Security
# Whitepaper (profile 3, certificate management, signed firmware).
# Import the submodule you need (der, pem, x509, chain, csr, verify, ...);
# this file stays empty so importing the package costs no heap.
# Every parser raises ValueError on malformed input and nothing else.
