"""TLS is verified: a server whose certificate a private CA signed is refused, until caCertPath
names that CA."""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
from backend_helpers import options
from loopback import openai_models

from code_llama_ls.backends.base import BackendError
from code_llama_ls.backends.openai_backend import OpenAICompletionsBackend

x509 = pytest.importorskip("cryptography.x509", reason="cryptography (the dev extra) makes the test CA")


def make_ca_and_server(folder):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "code-llama-ls test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return ca_path, context


async def test_private_ca_needs_ca_cert_path(serve, tokenizer, tmp_path):
    ca_path, context = make_ca_and_server(tmp_path)

    async def handler(request, reply):
        await openai_models(request, reply)

    server = await serve(handler, ssl=context)
    assert server.url.startswith("https://")
    refused = OpenAICompletionsBackend(options(server.url), tokenizer)
    with pytest.raises(BackendError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        await refused.load(lambda message, pct: None)
    await refused.close()

    trusted = OpenAICompletionsBackend(options(server.url, ca_cert_path=str(ca_path)), tokenizer)
    await trusted.load(lambda message, pct: None)
    assert trusted.status().state == "ready"
    await trusted.close()
