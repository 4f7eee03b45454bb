"""The synthetic world: services, their addresses and names, watched hosts.

Data only (STYLE 15 keeps data out of code, but these tables describe a
made-up dataset, not facts the classifier relies on). Service host names are
chosen so the DEFAULT ruleset's [[domain]] suffixes name the intended
service; addresses are drawn from each operator's well-known public ranges
where one is widely known and are otherwise illustrative (never inside the
watched prefixes or private/reserved space). Mining pools use the RFC 5737
documentation ranges, so no real pool operator is implied. ASN 0 means
"unknown" (NetFlow's convention).
"""

from __future__ import annotations

#: service -> (origin ASN, [CIDRs its servers sit in], [host names used in SNI/Host/DNS])
SERVICES: dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]] = {
    # gaming (RF 2017: World of Tanks, Steam)
    "steam": (
        32590,
        ("208.64.200.0/22", "162.254.192.0/21"),
        (
            "store.steampowered.com",
            "steamcommunity.com",
            "api.steampowered.com",
            "cdn.akamai.steamstatic.com",
        ),
    ),
    "wargaming": (
        0,
        ("92.223.8.0/22",),
        ("worldoftanks.asia", "wgcw.wargaming.net", "login.worldoftanks.ru"),
    ),
    "blizzard": (
        57976,
        ("37.244.28.0/22",),
        ("us.battle.net", "blzddist1-a.akamaihd.blzstatic.com"),
    ),
    "tencent-games": (45090, ("203.205.136.0/22",), ("lol.game.qq.com", "cf.game.qq.com")),
    "nexon": (0, ("211.218.230.0/24",), ("www.nexon.com", "api.nexon.com")),
    # streaming (RF 2017: Youku, iTunes; YouTube)
    "youtube": (
        15169,
        ("172.217.160.0/20", "173.194.32.0/20"),
        ("www.youtube.com", "r4---sn-i3belne6.googlevideo.com", "i.ytimg.com"),
    ),
    "youku": (37963, ("106.11.208.0/20",), ("www.youku.com", "v.youku.com", "r1.ykimg.com")),
    "itunes": (714, ("17.253.4.0/22",), ("itunes.apple.com", "music.apple.com")),
    "iqiyi": (4812, ("101.227.0.0/20",), ("www.iqiyi.com", "pic0.iqiyipic.com")),
    "tencent-video": (45090, ("203.205.140.0/22",), ("v.qq.com", "film.v.qq.com")),
    "netflix": (
        2906,
        ("45.57.0.0/20",),
        ("www.netflix.com", "ipv4-c001-sin001-ix.1.oca.nflxvideo.net"),
    ),
    # Western social/search/ecommerce (RF 2017 top eight)
    "facebook": (
        32934,
        ("157.240.7.0/24", "31.13.82.0/24"),
        ("www.facebook.com", "static.xx.fbcdn.net", "graph.facebook.com"),
    ),
    "instagram": (32934, ("157.240.8.0/24",), ("www.instagram.com", "scontent.cdninstagram.com")),
    "google": (
        15169,
        ("142.250.0.0/20", "216.58.192.0/20"),
        ("www.google.com", "www.google.co.kr"),
    ),
    "amazon": (
        16509,
        ("176.32.98.0/23", "52.94.236.0/22"),
        ("www.amazon.com", "images-na.ssl-images-amazon.com"),
    ),
    # Chinese counterparts (RF 2018: Alibaba, Tencent, Baidu)
    "baidu": (55967, ("220.181.38.0/24", "39.156.66.0/24"), ("www.baidu.com", "ss0.bdstatic.com")),
    "alibaba": (37963, ("140.205.94.0/24",), ("www.alibaba.com", "g.alicdn.com", "www.1688.com")),
    "taobao": (37963, ("106.11.248.0/22",), ("www.taobao.com", "login.tmall.com")),
    "qq": (
        45090,
        ("183.3.226.0/24", "203.205.254.0/24"),
        ("www.qq.com", "im.qq.com", "mat1.gtimg.com"),
    ),
    "weibo": (0, ("180.149.134.0/24",), ("weibo.com", "m.weibo.cn", "wx1.sinaimg.cn")),
    # email (RF 2017: 163.com accounts, Gmail)
    "gmail": (
        15169,
        ("172.253.118.0/24",),
        ("mail.google.com", "imap.gmail.com", "smtp.gmail.com"),
    ),
    "netease-mail": (4837, ("123.126.97.0/24",), ("mail.163.com", "imap.163.com", "smtp.163.com")),
    "qq-mail": (45090, ("14.18.175.0/24",), ("mail.qq.com", "imap.qq.com")),
    # news (RF 2017: Xinhua, People's Daily; NYT)
    "xinhua": (4837, ("202.108.119.0/24",), ("www.xinhuanet.com", "www.news.cn")),
    "peoples-daily": (4837, ("202.99.23.0/24",), ("www.people.com.cn", "en.people.cn")),
    "nytimes": (54113, ("151.101.1.0/24",), ("www.nytimes.com",)),
    "reuters": (54113, ("151.101.65.0/24",), ("www.reuters.com",)),
    # crypto exchanges (South Korean ones targeted in 2017-2019; DOMAIN 1.4, 4.2)
    "bithumb": (0, ("211.43.203.0/24",), ("www.bithumb.com", "api.bithumb.com")),
    "upbit": (16509, ("13.124.130.0/24",), ("upbit.com", "api.upbit.com")),
    "coinone": (0, ("103.60.126.0/24",), ("coinone.co.kr", "api.coinone.co.kr")),
    "korbit": (16509, ("52.78.200.0/24",), ("www.korbit.co.kr",)),
    "binance": (16509, ("13.230.4.0/24",), ("www.binance.com", "api.binance.com")),
    # VPN brands and Tor's site (the tunnels themselves go by port)
    "nordvpn": (0, ("185.93.2.0/24",), ("nordvpn.com", "api.nordvpn.com")),
    "expressvpn": (0, ("45.135.186.0/24",), ("www.expressvpn.com",)),
    "torproject": (0, ("116.202.120.0/24",), ("www.torproject.org", "dist.torproject.org")),
    # VPS hosts (RF 2018: VPS among the obfuscation methods)
    "aws": (16509, ("54.180.0.0/16",), ("ec2-54-180-12-7.ap-northeast-2.compute.amazonaws.com",)),
    "alibaba-cloud": (45102, ("47.74.0.0/16",), ("oss-cn-hongkong.aliyuncs.com",)),
    # mining pools (RFC 5737 documentation addresses)
    "supportxmr": (0, ("192.0.2.0/25",), ("pool.supportxmr.com",)),
    "minexmr": (0, ("198.51.100.0/25",), ("pool.minexmr.com",)),
    "moneroocean": (0, ("203.0.113.0/25",), ("gulf.moneroocean.stream",)),
    # names no [[domain]] rule lists: ordinary business web (security research, code, docs)
    "web-misc": (
        0,
        ("140.82.112.0/22", "104.16.0.0/16", "13.107.21.0/24", "93.184.216.0/24"),
        (
            "github.com",
            "www.kaspersky.com",
            "www.symantec.com",
            "www.python.org",
            "www.microsoft.com",
            "docs.oracle.com",
            "www.sohu-inc.net",
        ),
    ),
    # resolvers: Google/Cloudflare are [[network]]-listed; 114DNS is not
    "resolvers": (0, ("8.8.8.8/32", "1.1.1.1/32", "114.114.114.114/32", "8.8.4.4/32"), ()),
    # BitTorrent tracker and random peers (peers are drawn from the public pool)
    "openbittorrent": (0, ("93.158.213.0/24",), ("tracker.openbittorrent.com",)),
}

#: NK-hosted servers inside 175.45.176.0/22 (DOMAIN.md 2, 6.2: KCNA web on .71,
#: name servers .8/.9/.15/.16), with the names and ports they serve.
NK_SERVERS: tuple[tuple[str, int, str], ...] = (
    ("175.45.176.71", 80, "kcna.kp"),
    ("175.45.176.71", 443, "kcna.kp"),
    ("175.45.176.73", 80, "rodong.rep.kp"),
    ("175.45.176.75", 443, "naenara.com.kp"),
    ("175.45.176.8", 53, "kcna.kp"),
    ("175.45.176.9", 53, "rodong.rep.kp"),
    ("175.45.176.15", 25, "silibank.net.kp"),
    ("175.45.179.76", 80, "star.edu.kp"),
    ("175.45.178.20", 21, "star.net.kp"),
)

#: The watched prefixes and how many client hosts each path has (DOMAIN 1.0:
#: "200 or so" users, most on the .kp range).
WATCHED_HOSTS = (("175.45.176.0/22", 180), ("210.52.109.0/24", 40), ("77.94.35.0/24", 20))

#: Upstream ASNs of the kp_range path (DOMAIN.md 2).
AS_CHINA_UNICOM = 4837
AS_TRANSTELEKOM = 20485
#: The watched paths' own upstream AS: kp_range alternates (see PLANTED),
#: unicom is inside China Unicom, satgate's AS is unverified (0).
PATH_UPSTREAM = (AS_CHINA_UNICOM, AS_CHINA_UNICOM, 0)

#: Never draw random public addresses from these (IANA special-purpose
#: registry) nor from the watched prefixes.
RESERVED = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "175.45.176.0/22",
    "210.52.109.0/24",
    "77.94.35.0/24",
)
