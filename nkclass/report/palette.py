"""One colour per activity, the same in every chart, and the bands that
activity charts draw.

Related activities share a hue family (mining reds, anonymising purples,
media greens, web blues, mail and news oranges, greys for plumbing and the
unknown), so a reader who learns one chart can read the next.
"""

from __future__ import annotations

from nkclass.report.model import ANONYMISING

ACTIVITY_COLOURS: dict[str, str] = {
    "unknown": "#bdbdbd",
    "mining": "#b2182b",
    "mining_suspect": "#f4a582",
    "crypto_p2p": "#8c510a",
    "tor": "#40004b",
    "vpn": "#762a83",
    "proxy": "#9970ab",
    "dns_tunnel": "#c2a5cf",
    "crypto_exchange": "#e7298a",
    "social": "#1f78b4",
    "search_portal": "#a6cee3",
    "ecommerce": "#17becf",
    "streaming": "#33a02c",
    "gaming": "#b2df8a",
    "email": "#ff7f00",
    "news": "#fdbf6f",
    "p2p_filesharing": "#dfc27d",
    "remote_admin": "#bcbd22",
    "vps_hosting": "#dbdb8d",
    "nk_hosted_service": "#01665e",
    "infrastructure": "#636363",
    "web_other": "#ffff99",
}

#: Activities that always get a band of their own in activity charts, however
#: small: the ones watchers look for (mining, anonymising tools, P2P), never
#: lumped with the rest. Band name -> (activities, colour).
WATCHED_BANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "mining": (("mining",), ACTIVITY_COLOURS["mining"]),
    "mining (suspect)": (("mining_suspect",), ACTIVITY_COLOURS["mining_suspect"]),
    "Tor/VPN/proxy/DNS tunnel": (ANONYMISING, ACTIVITY_COLOURS["vpn"]),
    "P2P (coin nodes, BitTorrent)": (
        ("crypto_p2p", "p2p_filesharing"),
        ACTIVITY_COLOURS["crypto_p2p"],
    ),
}
OTHER_COLOUR = "#f0f0f0"  # the remaining known activities, drawn as one band
FALLBACK_COLOUR = "#999999"  # a name outside the vocabulary (never in the default build)


def colour(activity: str) -> str:
    """The colour of ``activity`` (a name of :data:`nkclass.ACTIVITIES`)."""
    return ACTIVITY_COLOURS.get(activity, FALLBACK_COLOUR)
