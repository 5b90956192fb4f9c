"""passTLSClientCert: the PEM and info headers in Traefik's layout."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares import pass_tls_client_cert
from proxynow.edge.http.middlewares.base import BuildContext
from tests.support.client_certs import EXPECTED_INFO, write_client_certs
from tests.unit.edge.http.middlewares.support import exchange

ALL = {"notAfter": True, "notBefore": True, "sans": True, "serialNumber": True}
DN = ["country", "province", "locality", "organization", "commonName", "serialNumber"]
DN.append("domainComponent")
SUBJECT = dict.fromkeys([*DN, "organizationalUnit"], True)
ISSUER = dict.fromkeys(DN, True)


def run(options: dict[str, Any], der: bytes) -> Exchange:
    middleware = Middleware.model_validate({"passTLSClientCert": options})
    step = pass_tls_client_cert.build(middleware, BuildContext("r", True, lambda name: None))
    assert step.request is not None
    found = exchange(b"/")
    found.client_cert = der
    step.request(found)
    return found


def test_pem_is_the_base64_of_the_der(tmp_path: Path) -> None:
    der = write_client_certs(tmp_path).der
    headers = run({"pem": True}, der).head
    assert headers.get_all(b"x-forwarded-tls-client-cert") == [base64.b64encode(der)]
    assert headers.get(b"x-forwarded-tls-client-cert-info") is None


def test_every_info_field_in_traefiks_layout(tmp_path: Path) -> None:
    der = write_client_certs(tmp_path).der
    options = {"info": {**ALL, "subject": SUBJECT, "issuer": ISSUER}}
    value = run(options, der).head.get(b"x-forwarded-tls-client-cert-info")
    assert value is not None
    assert unquote_plus(value.decode("ascii")) == EXPECTED_INFO
    assert b" " not in value and b'"' not in value  # url.QueryEscape'd


def test_some_fields(tmp_path: Path) -> None:
    der = write_client_certs(tmp_path).der
    options = {"info": {"notBefore": True, "subject": {"commonName": True}}}
    value = run(options, der).head.get(b"x-forwarded-tls-client-cert-info")
    assert value == b"Subject%3D%22CN%3Dclient+one%22%3BNB%3D%221767323045%22"
    # info with nothing chosen: the header is set, empty, as Traefik sets it.
    assert run({"info": {}}, der).head.get_all(b"x-forwarded-tls-client-cert-info") == [b""]


def test_no_client_certificate_no_header() -> None:
    headers = run({"pem": True, "info": ALL}, b"").head
    assert headers.get(b"x-forwarded-tls-client-cert") is None
    assert headers.get(b"x-forwarded-tls-client-cert-info") is None


def test_nothing_asked_is_no_hook() -> None:
    middleware = Middleware.model_validate({"passTLSClientCert": {"pem": False}})
    step = pass_tls_client_cert.build(middleware, BuildContext("r", True, lambda name: None))
    assert step.request is None
