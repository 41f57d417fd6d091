"""Node security (IHE ATNA Secure Node, ITI TF-1 9; XUA X-Service Provider, ITI TF-1 13).

- :mod:`~xds.security.pki`: a development certificate authority (``xds certs init``);
- :mod:`~xds.security.tls`: TLS with client-certificate (node) authentication for HTTP, MLLP and
  DICOM listeners (ITI TF-2a 3.19, Authenticate Node);
- :mod:`~xds.security.xua`: SAML 2.0 identity assertions in the WS-Security header (ITI-40);
- :mod:`~xds.security.guard`: what a SOAP endpoint asks of both, and its audit trail.
"""
