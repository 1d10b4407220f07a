"""The stack's generated credentials: one set per ``CASCADE_HOME/stack``, readable only by its owner.

``credentials.env`` (0600) holds the secrets as ``CASCADE_STACK_*`` variables; ``secrets/`` (0700)
holds the files the services read:

- S3 (versitygw): a root access key and secret key.
- Trino: password authentication (``file`` authenticator, bcrypt hash in ``trino-password.db``) over
  HTTPS only. The server's certificate (``trino-tls.pem``: key and chain) is issued for 127.0.0.1,
  ``localhost`` and ``trino`` (the Compose service) by a certificate authority generated here
  (``trino-ca.pem``), which clients verify against; internal communication uses a shared secret.
- Nessie: bearer tokens (Quarkus OIDC with a local public key, no OIDC server): an RSA key pair
  (``nessie-signing-key.pem``) whose public half Nessie verifies with, and a token signed with it
  (RS256, issuer ``cascade-stack``, valid a year and renewed by `cascade stack up` when less than
  30 days are left).

Nothing here is printed; clients get the values through ``client.env`` (0600) beside it.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

TRINO_USER = "cascade"
NESSIE_ISSUER = "cascade-stack"
TOKEN_LIFETIME_S = 365 * 86400
TOKEN_RENEW_S = 30 * 86400
TLS_NAMES = ("localhost", "trino")  # 127.0.0.1 too, as an IP address
BCRYPT_COST = 10

CA_FILE = "trino-ca.pem"
TLS_FILE = "trino-tls.pem"
PASSWORD_FILE = "trino-password.db"
NESSIE_KEY_FILE = "nessie-signing-key.pem"


def read_env(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.replace(path)


def write_env(path: Path, values: dict[str, str]) -> None:
    write_private(path, "".join(f"{k}={v}\n" for k, v in values.items()))


def ensure(root: Path) -> dict[str, str]:
    """The stack's secrets, generating whatever is missing (an older stack gains the new ones)."""
    env_path = root / "credentials.env"
    folder = root / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    values = read_env(env_path) if env_path.exists() else {}
    before = dict(values)
    generated = {
        "CASCADE_STACK_S3_ACCESS_KEY": lambda: f"cascade{secrets.token_hex(6)}",
        "CASCADE_STACK_S3_SECRET_KEY": lambda: secrets.token_urlsafe(24),
        "CASCADE_STACK_TRINO_PASSWORD": lambda: secrets.token_urlsafe(24),
        "CASCADE_STACK_TRINO_SHARED_SECRET": lambda: secrets.token_urlsafe(48),
    }
    for key, make in generated.items():
        values.setdefault(key, make())
    _password_file(folder / PASSWORD_FILE, values["CASCADE_STACK_TRINO_PASSWORD"])
    _tls_files(folder)
    signing = _signing_key(folder / NESSIE_KEY_FILE)
    if _token_expires(values.get("CASCADE_STACK_NESSIE_TOKEN"), signing) < time.time() + TOKEN_RENEW_S:
        values["CASCADE_STACK_NESSIE_TOKEN"] = _mint_token(signing)
    if values != before:
        write_env(env_path, values)
    return values


def files(root: Path) -> dict[str, Path]:
    """The secret files of a stack (Trino's password file and keystore, the certificate clients trust)."""
    folder = root / "secrets"
    return {"password": folder / PASSWORD_FILE, "keystore": folder / TLS_FILE, "ca": folder / CA_FILE}


def nessie_public_key(root: Path) -> str:
    """The base64 DER public key Nessie verifies tokens with (``quarkus.oidc.public-key``)."""
    from cryptography.hazmat.primitives import serialization

    public = _signing_key(root / "secrets" / NESSIE_KEY_FILE).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


# ---- Trino ---------------------------------------------------------------------------------------------
def _password_file(path: Path, password: str) -> None:
    """``user:bcrypt-hash`` as Trino's file authenticator wants it ($2y$, cost >= 8); kept while it matches."""
    import bcrypt

    if path.exists():
        user, _, hashed = path.read_text().strip().partition(":")
        if (
            user == TRINO_USER
            and hashed
            and bcrypt.checkpw(password.encode(), hashed.replace("$2y$", "$2b$", 1).encode())
        ):
            return
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
    write_private(path, f"{TRINO_USER}:{hashed.replace('$2b$', '$2y$', 1)}\n")


def _tls_files(folder: Path) -> None:
    """A private certificate authority and Trino's server certificate issued by it (10 years)."""
    if (folder / CA_FILE).exists() and (folder / TLS_FILE).exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC) - timedelta(minutes=5)
    until = now + timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cascade stack CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    names += [x509.DNSName(n) for n in TLS_NAMES]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    write_private(folder / TLS_FILE, key_pem + leaf.public_bytes(pem).decode() + ca.public_bytes(pem).decode())
    write_private(folder / CA_FILE, ca.public_bytes(pem).decode())
    # the CA's key is not kept: nothing else is ever issued by it


# ---- Nessie ---------------------------------------------------------------------------------------------
def _signing_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    write_private(path, pem)
    return key


def _mint_token(key: Any) -> str:
    import jwt

    now = int(time.time())
    claims = {"iss": NESSIE_ISSUER, "sub": TRINO_USER, "iat": now, "exp": now + TOKEN_LIFETIME_S}
    return jwt.encode(claims, key, algorithm="RS256")


def _token_expires(token: str | None, key: Any) -> float:
    """When a stored token expires (0 when missing or not signed by this key)."""
    import jwt

    if not token:
        return 0.0
    try:
        claims = jwt.decode(token, key.public_key(), algorithms=["RS256"], issuer=NESSIE_ISSUER)
    except jwt.PyJWTError:
        return 0.0
    return float(claims["exp"])
