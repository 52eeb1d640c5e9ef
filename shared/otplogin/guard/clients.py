"""Client buckets: the address a per-client allowance is counted for.

IPv4: the address itself (a carrier-grade NAT gateway is one bucket, which is
why its allowance grows with the codes its users verify). IPv6: the /64, since
every subscriber line gets at least a /64 and picks addresses in it at will.
"""

from __future__ import annotations

import ipaddress

UNPARSED = "unparsed"


def client_bucket(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return UNPARSED  # every unparsable value shares one (small) allowance
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
