"""TLS material for the sandbox: a private CA and a server certificate.

The Azure SDKs refuse plain HTTP for bearer tokens, so everything is served
over HTTPS. Clients trust the sandbox only through the CA bundle a real user
can also set (REQUESTS_CA_BUNDLE / SSL_CERT_FILE), never by turning
verification off.

The CA is cached in the state directory and reused, so a CA bundle path that
was exported once stays valid across restarts. The server certificate is
re-issued on every start (it is cheap and never needs to be trusted directly).
"""

import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _write_private(path, data):
    # Keys are only for this sandbox, but there is no reason to make them world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_or_create_ca(state_dir):
    cert_path = os.path.join(state_dir, CA_CERT)
    key_path = os.path.join(state_dir, CA_KEY)
    if os.path.exists(cert_path) and os.path.exists(key_path):
        with open(cert_path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
        with open(key_path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
        # Reuse unless it is about to expire; an expired CA would fail every handshake.
        if cert.not_valid_after_utc > _now() + datetime.timedelta(days=7):
            return cert, key

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sre.rollback sandbox CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue_server_cert(state_dir, ca_cert, ca_key):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=30))
        # Python's ssl matches IP addresses only against IP SANs, so 127.0.0.1 must be one.
        .add_extension(
            x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost"),
            ]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path = os.path.join(state_dir, SERVER_CERT)
    key_path = os.path.join(state_dir, SERVER_KEY)
    _write_private(key_path, _key_pem(key))
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def server_ssl_context(state_dir):
    """Return (ssl.SSLContext for serving, path of the CA bundle clients should trust)."""
    os.makedirs(state_dir, exist_ok=True)
    ca_cert, ca_key = _load_or_create_ca(state_dir)
    cert_path, key_path = _issue_server_cert(state_dir, ca_cert, ca_key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, os.path.join(state_dir, CA_CERT)
