"""Build: one static core library (csrc/) linked by the pybind11 module
nkclass._core and the Cython module nkclass._columns.

Set NKCLASS_SANITIZE=1 to build everything with AddressSanitizer and
UndefinedBehaviorSanitizer (run Python with libasan preloaded; see README).
"""
import os
import sys
from pathlib import Path

from Cython.Build import cythonize
from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import Extension, setup

ParallelCompile("NKCLASS_BUILD_JOBS", default=2).install()

ROOT = Path(__file__).parent
INCLUDE = "csrc/include"

# The core: plain C++17, no Python.h. One list per concern.
CORE_SOURCES = [
    "csrc/prefix/ipv4_table.cpp",
    "csrc/prefix/ipv6_table.cpp",
    "csrc/ports/port_table.cpp",
    "csrc/text/ip_text.cpp",
    "csrc/classify/classifier.cpp",
    "csrc/classify/flow_shape.cpp",
    "csrc/classify/dns_tunnel.cpp",
    "csrc/classify/pair_cache.cpp",
    "csrc/classify/ruleset_file.cpp",
    "csrc/meter/pcap_container.cpp",
    "csrc/meter/packet_decode.cpp",
    "csrc/meter/flow_table.cpp",
    "csrc/meter/stratum_scan.cpp",
    "csrc/meter/flow_meter.cpp",
    "csrc/domains/domain_table.cpp",
    "csrc/detect/detect.cpp",
    "csrc/detect/mining.cpp",
    "csrc/detect/coin_p2p.cpp",
    "csrc/detect/tls.cpp",
    "csrc/detect/http.cpp",
    "csrc/detect/dns.cpp",
    "csrc/detect/banners.cpp",
    "csrc/detect/bittorrent.cpp",
    "csrc/detect/vpn.cpp",
    "csrc/detect/socks.cpp",
    "csrc/detect/infra.cpp",
    "csrc/detect/p2p.cpp",
    "csrc/detect/realtime.cpp",
    "csrc/detect/crypto.cpp",
    "csrc/detect/quic.cpp",
    "csrc/report/aggregator.cpp",
    "csrc/collect/export_decoder.cpp",
    "csrc/collect/netflow.cpp",
    "csrc/collect/sflow.cpp",
    "csrc/collect/export_capture.cpp",
    "csrc/collect/udp_listener.cpp",
    "csrc/lists/dated_table.cpp",
    "csrc/names/name_cache.cpp",
    "csrc/names/dns_answers.cpp",
]

BINDING_SOURCES = [
    "csrc/bindings/module.cpp",
    "csrc/bindings/common.cpp",
    "csrc/bindings/prefix_table.cpp",
    "csrc/bindings/port_table.cpp",
    "csrc/bindings/pair_cache.cpp",
    "csrc/bindings/classifier.cpp",
    "csrc/bindings/flow_sources.cpp",
    "csrc/bindings/flow_meter.cpp",
    "csrc/bindings/detectors.cpp",
    "csrc/bindings/aggregate.cpp",
    "csrc/bindings/export_decoder.cpp",
    "csrc/bindings/name_cache.cpp",
    "csrc/bindings/ruleset_file.cpp",
]

# setuptools compares each output only with its own sources: name the
# headers so a header change recompiles the core (obj_deps) and a core
# change relinks the extensions (depends).
HEADERS = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "csrc").rglob("*.hpp"))]
CORE_DEPENDS = CORE_SOURCES + HEADERS

SANITIZE = os.environ.get("NKCLASS_SANITIZE") == "1"
# No -march=native: wheels must run on any x86-64 / aarch64 machine.
COMMON_FLAGS = ["-O3", "-g0", "-fvisibility=hidden", "-Wall", "-Wextra"]
LINK_FLAGS = []
if SANITIZE:
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
    COMMON_FLAGS = ["-O1", "-g", *san, "-Wall", "-Wextra"]
    LINK_FLAGS = san
if sys.platform == "darwin":
    COMMON_FLAGS.append("-Wno-unused-command-line-argument")



def _openssl() -> bool:
    """True when OpenSSL's libcrypto headers are installed (libssl-dev on
    Debian, openssl-devel on RPM systems): the QUIC Initial decryption and
    Telegram's obfuscated transport use it. NKCLASS_OPENSSL=0 builds
    without it (those two detectors then recognise less; see README)."""
    if os.environ.get("NKCLASS_OPENSSL") == "0":
        return False
    import sysconfig
    from pathlib import Path as _P
    roots = [_P(p) for p in (os.environ.get("OPENSSL_DIR"),) if p] + [
        _P("/usr"), _P("/usr/local"), _P("/opt/homebrew/opt/openssl@3"),
        _P(sysconfig.get_config_var("prefix") or "/usr")]
    return any((r / "include" / "openssl" / "evp.h").exists() for r in roots)


OPENSSL = _openssl()
OPENSSL_DEFINES = ["-DNKCLASS_HAVE_OPENSSL"] if OPENSSL else []
# After the static core on the link line (it is what needs libcrypto).
OPENSSL_LINK = ["-lcrypto"] if OPENSSL else []

CORE_LIB = (
    "nkcore",
    {
        "sources": CORE_SOURCES,
        "include_dirs": [INCLUDE],
        "obj_deps": {"": HEADERS},
        "cflags": ["-std=c++17", "-fPIC", *COMMON_FLAGS, *OPENSSL_DEFINES],
    },
)

# CRoaring (the C library pyroaring wraps, same version), for the native
# aggregation's address sets. Plain C, hidden symbols, no warnings of ours.
CROARING_LIB = (
    "croaring",
    {
        "sources": ["csrc/third_party/croaring/roaring.c"],
        "cflags": ["-std=c11", "-fPIC", "-w", *[f for f in COMMON_FLAGS if f not in
                                                ("-Wall", "-Wextra")]],
    },
)

ext_modules = [
    Pybind11Extension(
        "nkclass._core",
        BINDING_SOURCES,
        include_dirs=[INCLUDE],
        cxx_std=17,
        depends=CORE_DEPENDS,
        extra_compile_args=COMMON_FLAGS,
        extra_link_args=[*LINK_FLAGS, *OPENSSL_LINK],
    )
]
# Cython modules: typed loops where bytes and numbers meet Python objects.
CYTHON_MODULES = {
    "nkclass._columns": "nkclass/_columns.pyx",  # address text <-> binary columns
    "nkclass.report._kernel": "nkclass/report/_kernel.pyx",  # aggregation group-by
}
ext_modules += cythonize(
    [
        Extension(
            name,
            [source],
            include_dirs=[INCLUDE],
            language="c++",
            depends=CORE_DEPENDS,
            extra_compile_args=["-std=c++17", *COMMON_FLAGS],
            extra_link_args=[*LINK_FLAGS, *OPENSSL_LINK],
        )
        for name, source in CYTHON_MODULES.items()
    ],
    compiler_directives={"language_level": "3"},
)


class BuildExt(build_ext):
    """Builds the static core first, whichever command asked for the
    extensions (plain build, editable install or build_ext --inplace);
    build_ext itself links every extension against it."""

    def run(self):
        self.run_command("build_clib")
        super().run()


# Static link order: the core before the CRoaring it calls.
setup(libraries=[CORE_LIB, CROARING_LIB], ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
