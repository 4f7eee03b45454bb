// The fixed label vocabulary: application protocols (`app`) and activities.
//
// This header is the one place the vocabulary is defined. Codes are the
// enum values; names are what users see (nkclass.APPS / nkclass.ACTIVITIES
// are read from kAppNames / kActivityNames through the binding). Code 0 is
// "unknown" in both. Rulesets refer to these names; the order of
// kActivityNames is the default activity precedence (earlier wins a tie of
// equal evidence), following the tie-break order of the domain brief:
// payload-confirmed mining > coin nodes > Tor > VPN / proxy > exchanges >
// named-service categories > the rest.
#pragma once

#include <cstdint>

namespace nkclass {

enum App : std::uint8_t {
    kAppUnknown = 0,
    kAppTls, kAppHttp, kAppQuic, kAppDns, kAppMdns, kAppNtp, kAppDhcp, kAppSnmp,
    kAppSsh, kAppTelnet, kAppRdp, kAppVnc, kAppFtp,
    kAppSmtp, kAppImap, kAppPop3,
    kAppStratum,       // mining pool JSON-RPC (stratum v1, CryptoNote, getwork/GBT over TCP)
    kAppMoneroP2p,     // Levin
    kAppBitcoinP2p,
    kAppEthereumP2p,   // devp2p / discv4
    kAppBittorrent,
    kAppOpenvpn, kAppWireguard, kAppIpsec, kAppPptp, kAppL2tp, kAppGre,
    kAppSocks, kAppHttpProxy,  // SOCKS 4/5; HTTP CONNECT
    kAppTor,
    kAppIcmp, kAppSip, kAppXmpp, kAppRtmp,
    // P2P file sharing
    kAppGnutella, kAppEdonkey,  // eDonkey/eMule TCP and UDP, Kad
    kAppDirectconnect, kAppSyncthing, kAppSoulseek,
    // the DNS family (DNS and mDNS above) and encrypted DNS
    kAppLlmnr, kAppNetbiosNs, kAppNetbiosDgm, kAppSsdp,
    kAppDot, kAppDoq, kAppDoh, kAppDnscrypt,
    // VPNs and obfuscated proxies
    kAppTinc, kAppSoftether, kAppFortinet, kAppAnyconnect, kAppTailscale, kAppZerotier,
    kAppShadowsocks,  // fully encrypted first bytes: a heuristic, never payload rank
    // messaging and real time
    kAppStun, kAppDtls, kAppRtp, kAppRtcp, kAppTelegram, kAppWhatsapp, kAppZoom,
    // infrastructure, databases, messaging buses, industrial control
    kAppKerberos, kAppLdap, kAppSmb, kAppMssql, kAppMysql, kAppPostgresql, kAppRedis,
    kAppMongodb, kAppKafka, kAppMqtt, kAppAmqp, kAppZabbix, kAppSyslog, kAppRadius,
    kAppModbus, kAppIec104, kAppDnp3,
    kAppCount
};

inline constexpr const char* kAppNames[kAppCount] = {
    "unknown",
    "tls", "http", "quic", "dns", "mdns", "ntp", "dhcp", "snmp",
    "ssh", "telnet", "rdp", "vnc", "ftp",
    "smtp", "imap", "pop3",
    "stratum",
    "monero_p2p",
    "bitcoin_p2p",
    "ethereum_p2p",
    "bittorrent",
    "openvpn", "wireguard", "ipsec", "pptp", "l2tp", "gre",
    "socks", "http_proxy",
    "tor",
    "icmp", "sip", "xmpp", "rtmp",
    "gnutella", "edonkey",
    "directconnect", "syncthing", "soulseek",
    "llmnr", "netbios_ns", "netbios_dgm", "ssdp",
    "dot", "doq", "doh", "dnscrypt",
    "tinc", "softether", "fortinet", "anyconnect", "tailscale", "zerotier",
    "shadowsocks",
    "stun", "dtls", "rtp", "rtcp", "telegram", "whatsapp", "zoom",
    "kerberos", "ldap", "smb", "mssql", "mysql", "postgresql", "redis",
    "mongodb", "kafka", "mqtt", "amqp", "zabbix", "syslog", "radius",
    "modbus", "iec104", "dnp3",
};

enum Activity : std::uint8_t {
    kActUnknown = 0,
    kActMining,          // pool mining confirmed by payload, pool lists or the pair cache
    kActMiningSuspect,   // mining-like from ports or flow shape alone (weak; not counted as mining)
    kActCryptoP2p,       // running a coin node (Monero, Bitcoin, Ethereum P2P)
    kActTor,
    kActVpn,
    kActProxy,
    kActDnsTunnel,
    kActCryptoExchange,
    kActSocial,
    kActSearchPortal,
    kActEcommerce,
    kActStreaming,
    kActGaming,
    kActEmail,
    kActNews,
    kActP2pFilesharing,
    kActRemoteAdmin,
    kActVpsHosting,
    kActNkHostedService, // the server side is inside a watched network
    kActInfrastructure,  // name resolution, time, discovery, network management
    kActWebOther,        // web traffic with no named service
    kActivityCount
};

inline constexpr const char* kActivityNames[kActivityCount] = {
    "unknown",
    "mining",
    "mining_suspect",
    "crypto_p2p",
    "tor",
    "vpn",
    "proxy",
    "dns_tunnel",
    "crypto_exchange",
    "social",
    "search_portal",
    "ecommerce",
    "streaming",
    "gaming",
    "email",
    "news",
    "p2p_filesharing",
    "remote_admin",
    "vps_hosting",
    "nk_hosted_service",
    "infrastructure",
    "web_other",
};

}  // namespace nkclass
