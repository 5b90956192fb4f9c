"""A synchronous ACME session on the `acme` library: account, order, challenges, certificate.

Everything here blocks (the library uses `requests`); the manager runs it in a thread.
`acme`'s own polling helpers sleep a fixed second between polls, which would set the
pace of issuance, so authorizations and the order are polled here with short,
growing intervals (`POLL_INTERVALS`). TLS-ALPN-01 (RFC 8737) is not in `acme` 5.x: its
challenge arrives as `UnrecognizedChallenge`, the answer certificate is built with
`cryptography`, and the response is a `KeyAuthorizationChallengeResponse` of type
`tls-alpn-01` (an empty JSON object on the wire, like every challenge response).

Private keys never reach a log line; errors carry the CA's problem document only.
"""

from __future__ import annotations

import datetime
import hashlib
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from requests.adapters import HTTPAdapter

from proxynow.acme.domains import DomainSet
from proxynow.acme.renewal import retry_after_seconds
from proxynow.acme.storage import Account
from proxynow.certs import self_signed
from proxynow.config.static import ACME

__all__ = ["AcmeFailure", "AcmeSession", "Issued", "PublishChallenges", "generate_key"]

POLL_INTERVALS: tuple[float, ...] = (0.02, 0.05, 0.05, 0.1, 0.1, 0.2, 0.2, 0.5)
"""Seconds between polls of an authorization or the order; the last one repeats."""

ACME_TLS_1_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")

PublishChallenges = Callable[[Mapping[str, str], Mapping[str, tuple[bytes, bytes]]], None]
"""Blocking: make (HTTP-01 token → key authorization, domain → TLS-ALPN-01 cert/key) the
answers of this order, and return once the workers have them."""

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class AcmeFailure(Exception):
    """An order failed; `retry_after` (seconds) when the CA asked to wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Issued:
    chain_pem: bytes
    key_pem: bytes


def generate_key(key_type: str) -> PrivateKey:
    """A new private key of Traefik's `keyType`."""
    if key_type == "EC256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "EC384":
        return ec.generate_private_key(ec.SECP384R1())
    bits = int(key_type.removeprefix("RSA") or 4096)
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class _ServerNameAdapter(HTTPAdapter):
    """Verify the CA's certificate against `caServerName` instead of the URL's host."""

    def __init__(self, server_name: str) -> None:
        self._server_name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._server_name
        kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


class AcmeSession:
    """One resolver's connection to its CA, with its account (registered on first use)."""

    def __init__(self, config: ACME, account: Account | None) -> None:
        self._config = config
        self._bundle = _ca_bundle(config)
        key = _account_key(account)
        self._key = key
        self._jwk: jose.JWK = (
            jose.JWKEC(key=key)
            if isinstance(key, ec.EllipticCurvePrivateKey)
            else jose.JWKRSA(key=key)
        )
        alg = jose.ES256 if isinstance(key, ec.EllipticCurvePrivateKey) else jose.RS256
        registration = None
        if account is not None and account.registration:
            registration = messages.RegistrationResource.from_json(account.registration)
        verify: bool | str = self._bundle.name if self._bundle is not None else True
        self._net = client.ClientNetwork(
            self._jwk,
            account=registration,
            alg=alg,
            verify_ssl=verify,  # type: ignore[arg-type]  # requests takes a CA file too
            user_agent="proxynow",
            timeout=int(config.client_timeout),
        )
        self._last_retry_after: float | None = None
        self._net.session.hooks["response"].append(self._note_retry_after)
        if config.ca_server_name:
            self._net.session.mount("https://", _ServerNameAdapter(config.ca_server_name))
        try:
            self._client = client.ClientV2(
                client.ClientV2.get_directory(config.ca_server, self._net), self._net
            )
            if registration is None or not _same_origin(registration.uri, self._client.directory):
                # No account yet, or one registered with another CA (caServer changed).
                self._net.account = None
                self._register()
        except BaseException:
            self.close()
            raise

    @property
    def account(self) -> Account:
        registration = self._net.account
        return Account(
            email=self._config.email,
            private_key_der=self._key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            registration=None if registration is None else registration.to_json(),
        )

    def close(self) -> None:
        self._net.session.close()
        if self._bundle is not None:
            self._bundle.close()

    def obtain(self, domains: DomainSet, publish: PublishChallenges) -> Issued:
        """Order a certificate for `domains`; raises `AcmeFailure`."""
        try:
            try:
                return self._obtain(domains, publish)
            except messages.Error as exc:
                if exc.code != "accountDoesNotExist":
                    raise
                # The stored account is unknown to this CA (a new CA server, a reset
                # staging environment): register again, once.
                self._net.account = None
                self._register()
                return self._obtain(domains, publish)
        except AcmeFailure:
            raise
        except (errors.Error, messages.Error, requests.RequestException, ValueError) as exc:
            raise AcmeFailure(_describe(exc), self._last_retry_after) from exc
        finally:
            self._last_retry_after = None

    def _register(self) -> None:
        eab = None
        if self._config.eab is not None:
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=self._jwk.public_key(),
                kid=self._config.eab.kid,
                hmac_key=self._config.eab.hmac_encoded,
                directory=self._client.directory,
            )
        registration = messages.NewRegistration.from_data(
            email=self._config.email or None,
            terms_of_service_agreed=True,
            external_account_binding=eab,
        )
        try:
            self._client.new_account(registration)
        except errors.ConflictError as exc:  # this key already has an account: use it
            self._net.account = messages.RegistrationResource(
                uri=exc.location, body=messages.Registration()
            )

    def _obtain(self, domains: DomainSet, publish: PublishChallenges) -> Issued:
        key = generate_key(self._config.key_type)
        key_pem = _key_pem(key)
        csr = crypto_util.make_csr(key_pem, list(domains.names))
        order = self._client.new_order(csr, profile=self._config.profile or None)
        pending = [a for a in order.authorizations if a.body.status == messages.STATUS_PENDING]
        http01: dict[str, str] = {}
        tlsalpn01: dict[str, tuple[bytes, bytes]] = {}
        answers = [self._choose(a, http01, tlsalpn01) for a in pending]
        publish(http01, tlsalpn01)
        try:
            for challenge, response in answers:
                self._client.answer_challenge(challenge, response)
            self._wait_authorizations(pending)
            return Issued(self._finalize(order), key_pem)
        finally:
            if http01 or tlsalpn01:
                publish({}, {})

    def _choose(
        self,
        authz: messages.AuthorizationResource,
        http01: dict[str, str],
        tlsalpn01: dict[str, tuple[bytes, bytes]],
    ) -> tuple[messages.ChallengeBody, challenges.ChallengeResponse]:
        """The challenge to answer for one authorization, its answer recorded."""
        domain = authz.body.identifier.value
        for challb in authz.body.challenges:
            if self._config.http_challenge is not None and isinstance(
                challb.chall, challenges.HTTP01
            ):
                response, validation = challb.chall.response_and_validation(self._jwk)
                http01[challb.chall.encode("token")] = validation
                return challb, response
            if (
                self._config.tls_challenge is not None
                and isinstance(challb.chall, challenges.UnrecognizedChallenge)
                and challb.chall.jobj.get("type") == TLSALPN01Response.typ
            ):
                key_authorization = _key_authorization(challb.chall.jobj["token"], self._jwk)
                tlsalpn01[domain] = tls_alpn_certificate(domain, key_authorization)
                return challb, TLSALPN01Response(key_authorization=key_authorization)
        raise AcmeFailure(f"{domain}: the CA offers no challenge this resolver can answer")

    def _wait_authorizations(self, pending: list[messages.AuthorizationResource]) -> None:
        deadline = time.monotonic() + self._config.certificate_timeout + 60
        for authz in pending:
            for _ in _polls(deadline):
                authz, _response = self._client.poll(authz)
                status = authz.body.status
                if status == messages.STATUS_VALID:
                    break
                if status != messages.STATUS_PENDING:
                    raise AcmeFailure(_authorization_error(authz))
            else:
                raise AcmeFailure(f"{authz.body.identifier.value}: authorization timed out")

    def _finalize(self, order: messages.OrderResource) -> bytes:
        deadline = time.monotonic() + self._config.certificate_timeout + 60
        for _ in _polls(deadline):
            body = order.body
            if body.status in (messages.STATUS_PENDING, messages.STATUS_READY):
                # Pending: every authorization is valid but the CA has not noticed yet.
                order = self._begin_finalization(order)
                body = order.body
            if body.status == messages.STATUS_INVALID:
                raise AcmeFailure(f"order invalid: {body.error}")
            if body.status == messages.STATUS_VALID and body.certificate is not None:
                return self._download(body.certificate)
            response = self._net.post(order.uri, None)
            order = order.update(body=messages.Order.from_json(response.json()))
        raise AcmeFailure("the order was not finalized in time")

    def _begin_finalization(self, order: messages.OrderResource) -> messages.OrderResource:
        try:
            return self._client.begin_finalization(order)
        except messages.Error as exc:
            if exc.code != "orderNotReady":
                raise
            response = self._net.post(order.uri, None)
            return order.update(body=messages.Order.from_json(response.json()))

    def _download(self, url: str) -> bytes:
        response = self._net.post(url, None)
        chain = response.text
        wanted = self._config.preferred_chain
        if wanted and _top_issuer(chain) != wanted:
            links = requests.utils.parse_header_links(response.headers.get("Link", ""))
            for link in links:
                if link.get("rel") == "alternate" and link.get("url"):
                    alternate = self._net.post(link["url"], None).text
                    if _top_issuer(alternate) == wanted:
                        return alternate.encode()
        return chain.encode()

    def _note_retry_after(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code in (429, 503):
            self._last_retry_after = retry_after_seconds(
                response.headers.get("Retry-After"), datetime.datetime.now(datetime.UTC)
            )


class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """The answer to a TLS-ALPN-01 challenge (RFC 8737)."""

    typ = "tls-alpn-01"


def tls_alpn_certificate(domain: str, key_authorization: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of the RFC 8737 response certificate for `domain`."""
    digest = hashlib.sha256(key_authorization.encode()).digest()
    # The extension value is the DER OCTET STRING holding the digest.
    answer = x509.UnrecognizedExtension(ACME_TLS_1_OID, b"\x04\x20" + digest)
    return self_signed(
        domain,
        [domain],
        valid_for=datetime.timedelta(days=7),
        backdate=datetime.timedelta(minutes=5),
        extensions=[(answer, True)],
    )


def _key_authorization(token: str, jwk: jose.JWK) -> str:
    thumbprint = jose.b64encode(jwk.thumbprint(hash_function=hashes.SHA256)).decode()
    return f"{token}.{thumbprint}"


def _account_key(account: Account | None) -> PrivateKey:
    if account is not None and account.private_key_der:
        key = serialization.load_der_private_key(account.private_key_der, password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            return key
        raise ValueError("the stored account key is neither EC nor RSA")
    # The account key only signs requests: P-256 is the fastest choice.
    return ec.generate_private_key(ec.SECP256R1())


def _ca_bundle(config: ACME) -> Any:
    """A temporary CA file for `caCertificates` (+ the system pool), or None for the default."""
    if not config.ca_certificates:
        return None
    bundle = tempfile.NamedTemporaryFile(prefix="proxynow-acme-ca-", suffix=".pem")  # noqa: SIM115
    parts: list[bytes] = []
    if config.ca_system_cert_pool:
        parts.append(open(requests.certs.where(), "rb").read())  # noqa: SIM115
    for path in config.ca_certificates:
        with open(path, "rb") as source:
            parts.append(source.read())
    bundle.write(b"\n".join(parts))
    bundle.flush()
    return bundle


def _same_origin(account_uri: str | None, directory: messages.Directory) -> bool:
    """The account URI is on the host of this CA's newAccount endpoint."""
    origin = urllib.parse.urlsplit(str(directory["newAccount"]))
    account = urllib.parse.urlsplit(account_uri or "")
    return (account.scheme, account.netloc) == (origin.scheme, origin.netloc)


def _polls(deadline: float) -> Iterator[int]:
    """Yield before each poll, sleeping the growing interval between them."""
    attempt = 0
    while time.monotonic() < deadline:
        yield attempt
        time.sleep(POLL_INTERVALS[min(attempt, len(POLL_INTERVALS) - 1)])
        attempt += 1


def _top_issuer(chain_pem: str) -> str:
    certs = x509.load_pem_x509_certificates(chain_pem.encode())
    attrs = certs[-1].issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _authorization_error(authz: messages.AuthorizationResource) -> str:
    domain = authz.body.identifier.value
    for challb in authz.body.challenges:
        if challb.error is not None:
            return f"{domain}: {challb.error}"
    return f"{domain}: authorization {authz.body.status}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, errors.ValidationError):
        return "; ".join(_authorization_error(a) for a in exc.failed_authzrs)
    return f"{type(exc).__name__}: {exc}"
