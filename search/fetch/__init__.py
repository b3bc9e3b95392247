"""Fetching a query photo from a URL the shopper gave, without letting the URL reach inside our network.

Server-side request forgery defences, in order:
- only http and https, no credentials in the URL;
- the host is resolved once and refused if ANY of its addresses is not a public unicast address
  (loopback, private, link-local, multicast, reserved, unspecified or shared), IPv4 embedded in IPv6
  included: IPv4-mapped, IPv4-compatible, 6to4, Teredo (server and client) and NAT64 must all lead to a
  public IPv4 address;
- the connection goes to that vetted address (pinned), so a second DNS answer cannot swap in an
  internal one (DNS rebinding); https still sends SNI and verifies the certificate for the host name;
- redirects are followed by hand, at most SEARCH_URL_MAX_REDIRECTS, each one vetted the same way;
- connect and read timeouts, and a byte cap while streaming (Content-Length is checked first);
- one wall-clock deadline, SEARCH_URL_DEADLINE, over the whole fetch: every hop's connect, TLS, headers
  and body. Socket timeouts bound each read, not their sum, so on their own a host sending a byte at a
  time would hold the request open for ever.
SEARCH_URL_ALLOWED_HOSTS lists "host" or "host:port" entries allowed to be private (tests).
"""

from .addresses import UrlFetchError, VettedUrl, vet_url
from .download import fetch_image_url

__all__ = ["UrlFetchError", "VettedUrl", "fetch_image_url", "vet_url"]
